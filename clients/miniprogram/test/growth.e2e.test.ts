/**
 * Growth through the SDK against a real `interact serve` (docs/growth.md): a share token
 * in the share path, an invitee opening the room with it (`inv` on the first connection
 * only), and pre-live reminders (`wx.requestSubscribeMessage`, the accepted templates
 * reported as credits).
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, Room, createRoom, shareToken, subscribe } from "../src/index";
import { live, until, waitFor } from "./events";
import { Api, Server, startServer } from "./server";
import { WxShim } from "./wxshim";

const TEMPLATES = ["tplStartSoon", "tplStartNow", "tplReplay"];

const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

function tokenOf(server: Server, uid: string): () => Promise<string> {
  let token: Promise<string> | null = null;
  return () => (token ??= Api.login(server.base, uid).then((a) => a.token));
}

function invOf(url: string): string | null {
  return new URL(url.replace(/^ws/, "http")).searchParams.get("inv");
}

describe("growth", () => {
  let server: Server;
  let ops: Api;

  before(async () => {
    server = await startServer({ INTERACT_REMINDER_TEMPLATES: TEMPLATES.join(",") });
    ops = await Api.login(server.base, "growth-ops", "operator");
  });

  after(async () => {
    await server?.stop();
  });

  test("an invitee opens the room with the sharer's token: attributed once, reconnects add nothing", { timeout: 30000 }, async () => {
    const roomId = await ops.liveRoom("share");
    const alice = { baseUrl: server.base, wx: new WxShim(), getToken: tokenOf(server, "alice"), roomId };
    const token = await shareToken(alice);
    assert.match(token, /^[A-Za-z0-9_-]{16}$/);
    const [ask] = (alice.wx as WxShim).requests;
    assert.equal(ask?.method, "POST");
    assert.ok(ask?.url.endsWith(`/api/v1/rooms/${roomId}/share-tokens`), ask?.url);
    // The path the sharer's onShareAppMessage returns, as the invitee's page gets it.
    const path = `/pages/room/room?roomId=${roomId}&inv=${token}`;
    const query = new URL(`https://x${path}`).searchParams;

    const invites = (): Promise<Record<string, any>> => ops.call("GET", `/api/v1/rooms/${roomId}/invites`, undefined, 200);
    assert.equal((await invites()).invited_uv, 0);

    const bobWx = new WxShim();
    const bob = createRoom({
      url: server.ws, roomId: query.get("roomId") ?? "", getToken: tokenOf(server, "bob"), wx: bobWx,
      inviteToken: query.get("inv") ?? undefined, random: () => 0,
    });
    opened.push(bob);
    await live(bob);
    assert.equal(invOf(bobWx.tasks[0]!.url), token);
    let report: Record<string, any> = {};
    await until(async () => (report = await invites()).invited_uv === 1, "bob attributed to alice");
    assert.equal(report.inviters, 1);
    assert.equal(report.opens, 1);

    // The network drops: the reconnect is the same open, so it carries no token.
    bobWx.last.cut();
    await waitFor(bob, "state", (s) => s.state === "reconnecting");
    await live(bob);
    assert.equal(bobWx.tasks.length, 2);
    assert.equal(invOf(bobWx.tasks[1]!.url), null, bobWx.tasks[1]!.url);
    const mine = await new Api(server.base, await alice.getToken()).call("GET", `/api/v1/me/invites?room=${roomId}`, undefined, 200);
    assert.equal(JSON.stringify(await invites()), JSON.stringify(report), "nothing more counted");
    assert.deepEqual(mine, { room: roomId, invited: 1 });

    // alice opening her own share, and a mangled token, count nothing and cost no 400.
    const aliceRoom = createRoom({ url: server.ws, roomId, getToken: alice.getToken, wx: new WxShim(), inviteToken: token });
    const mangledWx = new WxShim();
    const mangled = createRoom({ url: server.ws, roomId, getToken: tokenOf(server, "carol"), wx: mangledWx, inviteToken: "not a token" });
    opened.push(aliceRoom, mangled);
    await Promise.all([live(aliceRoom), live(mangled)]);
    assert.equal(invOf(mangledWx.tasks[0]!.url), null);
    assert.equal((await invites()).invited_uv, 1);
  });

  test("subscribe: the accepted templates become credits, the rejected and banned do not", { timeout: 30000 }, async () => {
    const room = await ops.call("POST", "/api/v1/rooms", { title: "tonight", scheduled_at: Date.now() + 3600_000 }, 201);
    const roomId = room.id as string;
    const wx = new WxShim();
    const options = { baseUrl: server.base, wx, getToken: tokenOf(server, "dora"), roomId, templateIds: TEMPLATES };
    wx.subscribeAnswers = { tplStartSoon: "accept", tplStartNow: "accept", tplReplay: "reject" };
    const got = await subscribe(options);
    assert.deepEqual(wx.subscribeAsks, [TEMPLATES]);
    assert.deepEqual(got.accepted, ["tplStartSoon", "tplStartNow"]);
    assert.deepEqual(got.answers, { tplStartSoon: "accept", tplStartNow: "accept", tplReplay: "reject" });
    assert.deepEqual(got.credits, { tplStartSoon: 1, tplStartNow: 1 });
    const sent = wx.requests.filter((r) => r.url.endsWith(`/rooms/${roomId}/subscriptions`));
    assert.equal(sent.length, 1);
    assert.deepEqual(JSON.parse(sent[0]!.body ?? "{}"), { templates: ["tplStartSoon", "tplStartNow"] });
    assert.equal(sent[0]!.statusCode, 201);

    // Asked again, one accepted: that template's credits add up on the server.
    wx.subscribeAnswers = { tplStartSoon: "accept", tplStartNow: "ban", tplReplay: "reject" };
    const again = await subscribe(options);
    assert.deepEqual(again.credits, { tplStartSoon: 2, tplStartNow: 1 });

    // Nothing accepted: the server is not asked.
    wx.subscribeAnswers = { tplStartSoon: "reject", tplStartNow: "ban", tplReplay: "reject" };
    const none = await subscribe(options);
    assert.deepEqual([none.accepted, none.credits], [[], null]);
    assert.equal(wx.requests.filter((r) => r.url.endsWith("/subscriptions")).length, 2);

    // The dialog fails (not from a tap, or the user's switch is off).
    wx.subscribeFailure = "can only be invoked by user TAP gesture.";
    const failed = await subscribe(options).then(() => assert.fail("resolved"), (e: unknown) => e);
    assert.ok(failed instanceof ApiError && failed.code === "subscribe_failed", String(failed));

    // A template the server does not know is the server's 400, not retried.
    wx.subscribeFailure = null;
    const unknown = await subscribe({ ...options, templateIds: ["tplNope"] }).then(() => assert.fail("resolved"), (e: unknown) => e);
    assert.ok(unknown instanceof ApiError && unknown.status === 400, String(unknown));
    assert.equal(wx.requests.filter((r) => r.url.endsWith("/subscriptions")).length, 3);
  });
});

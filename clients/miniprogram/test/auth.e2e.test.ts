/**
 * 4001 and 4003 where they hurt in a long session: at a reconnect's handshake, after a
 * token expired or a ban landed while the viewer was away (room.e2e.test.ts covers them
 * on a first connection and on a live socket).
 */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { InteractError, Room, RoomOptions, createRoom } from "../src/index";
import { comments, live, stampConnects, waitFor } from "./events";
import { Api, Server, startServer } from "./server";
import { WxShim } from "./wxshim";

let server: Server;
let ops: Api;

before(async () => {
  server = await startServer();
  ops = await Api.login(server.base, "ops", "operator");
});

const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

after(async () => {
  await server?.stop();
});

function open(shim: WxShim, roomId: string, getToken: () => Promise<string>, extra: Partial<RoomOptions>): Room {
  const room = createRoom({ url: server.ws, roomId, getToken, wx: shim, random: () => 0.5, ...extra });
  opened.push(room);
  return room;
}

test("4001 at a reconnect: one fresh token, at once, and recovery; each welcome earns a new refresh", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom("expiry");
  const me = `exp-${process.pid}`;
  const good = async (): Promise<string> => (await Api.login(server.base, me)).token;
  // The first token, then per reconnection an expired one and, asked again, a fresh one.
  let asked = 0;
  const getToken = async (): Promise<string> => (asked++ % 2 === 1 ? "expired.token.here" : good());
  const shim = new WxShim();
  const connects = stampConnects(shim);
  // A back-off of 1 s for the first retry and 2 s for the next: the refresh after a
  // 4001 must not wait for either.
  const room = open(shim, roomId, getToken, { backoffBaseMs: 2000, backoffCapMs: 20000 });
  const got = comments(room);
  const gaps: unknown[] = [];
  room.on("gap", (g) => gaps.push(g));
  await live(room);

  for (const round of [1, 2]) {
    // Listen first: a quiet room may deliver the comment before publish() has its answer.
    const seen = waitFor(room, "dm", (c) => c.text === `live ${round}`);
    await ops.publish(roomId, `live ${round}`);
    await seen;
    const dropped = waitFor(room, "state", (s) => s.state === "reconnecting");
    shim.last.cut();
    await dropped;
    const welcomed = waitFor(room, "welcome");
    await ops.publish(roomId, `away ${round}`);
    const back = await welcomed;
    assert.equal(back.recovered, true);
    assert.equal(asked, 1 + 2 * round, "one refused token and one fresh per reconnection");
    const refused = connects[connects.length - 2] as number;
    const refreshed = connects[connects.length - 1] as number;
    assert.ok(refreshed - refused < 1000, `the refresh came ${refreshed - refused} ms after the refused attempt`);
    assert.equal(room.state, "live");
  }
  // What was published while away came with the welcome (recovered), not after it.
  assert.deepEqual(
    got.map((c) => c.text),
    ["live 1", "away 1", "live 2", "away 2"],
  );
  assert.deepEqual(
    got.map((c) => c.seq),
    [1, 2, 3, 4],
  );
  assert.equal(gaps.length, 0);
  assert.equal(shim.tasks.length, 5);
  assert.deepEqual(shim.failedCloses, []);
});

test("a ban that lands while the viewer is away: 4003 at the reconnect stops it for good", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom("ban");
  const me = `ban-${process.pid}`;
  let asked = 0;
  const getToken = async (): Promise<string> => {
    asked += 1;
    // The ban is in place before the reconnection's handshake, not on a live socket.
    if (asked === 2) await ops.call("POST", "/api/v1/moderation/bans", { uid: me, seconds: 60 }, 201);
    return (await Api.login(server.base, me)).token;
  };
  const shim = new WxShim();
  // A tiny back-off: a wrong reconnect would show up within the wait below.
  const room = open(shim, roomId, getToken, { backoffBaseMs: 10, backoffCapMs: 20 });
  await live(room);
  const stopped = waitFor(room, "state", (s) => s.state === "closed");
  shim.last.cut();
  assert.equal((await stopped).code, 4003);
  await assert.rejects(room.send("still here?"), (e: InteractError) => e.code === "closed");
  room.like();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(shim.tasks.length, 2, "no reconnect after 4003");
  assert.equal(asked, 2);
  assert.equal(shim.listeners, 0, "a stopped room stops listening to the app's lifecycle");
  assert.deepEqual(shim.failedCloses, []);
});

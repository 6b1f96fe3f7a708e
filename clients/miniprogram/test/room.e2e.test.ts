/**
 * The SDK in Node against a real `interact serve` (memory engine, dev login on), through
 * the `ws`-based wx shim.
 */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { Comment, InteractError, Room, RoomOptions, createRoom } from "../src/index";
import { live, waitFor } from "./events";
import { Api, Server, startServer } from "./server";
import { MAX_SOCKETS, WxShim } from "./wxshim";

let server: Server;
let ops: Api;
let uidCounter = 0;

before(async () => {
  // Likes unthrottled so the coalescing test can count every tap in the total.
  server = await startServer({ INTERACT_LIKES_PER_S: "0" });
  ops = await Api.login(server.base, "ops", "operator");
});

// Every room a test opened is closed after it, failed or not: an open room keeps
// reconnecting, and its timers would keep the test process alive.
const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

after(async () => {
  await server?.stop();
});

function uid(prefix: string): string {
  uidCounter += 1;
  return `${prefix}${uidCounter}-${process.pid}`;
}

async function viewerToken(id: string): Promise<string> {
  return (await Api.login(server.base, id)).token;
}

function open(shim: WxShim, roomId: string, getToken: () => Promise<string>, extra: Partial<RoomOptions> = {}): Room {
  const room = createRoom({ url: server.ws, roomId, getToken, wx: shim, random: () => 0.5, ...extra });
  opened.push(room);
  return room;
}

function comments(room: Room): Comment[] {
  const got: Comment[] = [];
  room.on("dm", (c) => got.push(c));
  return got;
}

function seqs(got: Comment[]): number[] {
  return got.map((c) => c.seq);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

function assertClean(shim: WxShim): void {
  assert.deepEqual(shim.failedCloses, [], "a task was closed twice");
}

for (const codec of ["json", "msgpack"] as const) {
  test(`joins and receives 200 comments in order (${codec})`, { timeout: 60000 }, async () => {
    const roomId = await ops.liveRoom();
    const shim = new WxShim();
    const me = uid("v");
    const room = open(shim, roomId, () => viewerToken(me), { codec });
    const got = comments(room);
    await live(room);
    assert.equal(room.welcome?.user.uid, me);
    const last = waitFor(room, "dm", (c) => c.seq === 200, 30000);
    for (let i = 1; i <= 200; i++) await ops.publish(roomId, `c${i}`);
    await last;
    assert.deepEqual(seqs(got), range(200));
    assert.deepEqual(got.map((c) => c.text), range(200).map((i) => `c${i}`));
    const seq = await room.send("hello");
    assert.equal(typeof seq, "number");
    const frame = shim.framesOut[shim.framesOut.length - 1];
    assert.equal(typeof frame === "string" ? "text" : "binary", codec === "json" ? "text" : "binary");
    assert.equal(shim.last.url.includes("codec=msgpack"), codec === "msgpack");
    room.close();
    assert.equal(room.state, "closed");
    assertClean(shim);
    assert.equal(shim.tasks.length, 1);
  });
}

test("send resolves with the seq; refusals reject with the documented code", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const shim = new WxShim();
  const me = uid("s");
  const room = open(shim, roomId, () => viewerToken(me));
  await live(room);

  const echo = waitFor(room, "dm");
  const seq = await room.send("主播好", { color: 16646914, mode: "top" });
  assert.equal(seq, 1);
  const echoed = await echo;
  assert.equal(echoed.seq, 1);
  assert.equal(echoed?.color, 16646914);
  assert.equal(echoed?.mode, "top");

  const tooLong = await room.send("长".repeat(41)).then(
    () => assert.fail("accepted"),
    (e: unknown) => e,
  );
  assert.ok(tooLong instanceof InteractError);
  assert.equal(tooLong.code, "too_long");

  await ops.call("POST", `/api/v1/rooms/${roomId}/mutes`, { uid: me, seconds: 60 }, 201);
  await assert.rejects(room.send("still here"), (e: InteractError) => e.code === "muted" && typeof e.ack?.until === "number");
  await ops.call("DELETE", `/api/v1/rooms/${roomId}/mutes/${me}`, undefined, 204);

  const paused = waitFor(room, "room", (r) => r.status === "paused");
  await ops.call("POST", `/api/v1/rooms/${roomId}/pause`, undefined, 200);
  await paused;
  await assert.rejects(room.send("还在吗"), (e: InteractError) => e.code === "room_not_live");

  room.close();
  await assert.rejects(room.send("after close"), (e: InteractError) => e.code === "closed");
  assertClean(shim);
});

test("a socket cut mid-stream recovers with no comment missed or doubled", { timeout: 60000 }, async () => {
  const roomId = await ops.liveRoom();
  const shim = new WxShim();
  const me = uid("c");
  const room = open(shim, roomId, () => viewerToken(me));
  const got = comments(room);
  const gaps: unknown[] = [];
  room.on("gap", (g) => gaps.push(g));
  await live(room);

  const publishing = (async () => {
    for (let i = 1; i <= 200; i++) await ops.publish(roomId, `m${i}`);
  })();
  await waitFor(room, "dm", (c) => c.seq >= 50);
  const reconnecting = waitFor(room, "state", (s) => s.state === "reconnecting");
  shim.last.cut();
  await reconnecting;
  await publishing;
  if (got[got.length - 1]?.seq !== 200) await waitFor(room, "dm", (c) => c.seq === 200);

  assert.deepEqual(seqs(got), range(200));
  assert.equal(gaps.length, 0);
  assert.equal(shim.tasks.length, 2);
  assert.match(shim.last.url, /&since=\d+&epoch=/);
  assert.equal(room.welcome?.recovered, true);
  assert.ok(shim.maxOpen <= 1, `at most one socket open, saw ${shim.maxOpen}`);
  room.close();
  assertClean(shim);
});

test("the watchdog replaces a socket that went silent without a FIN", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const shim = new WxShim();
  const me = uid("w");
  const room = open(shim, roomId, () => viewerToken(me), { pingIntervalMs: 300 });
  const got = comments(room);
  await live(room);
  // Listen first: a quiet room may deliver the comment before publish() has its answer.
  const first = waitFor(room, "dm", (c) => c.seq === 1);
  await ops.publish(roomId, "before");
  await first;

  const dead = shim.last;
  dead.stall();
  await ops.publish(roomId, "while dead");
  await waitFor(room, "state", (s) => s.state === "reconnecting");
  await live(room);
  const third = waitFor(room, "dm", (c) => c.seq === 3);
  await ops.publish(roomId, "after");
  await third;

  assert.deepEqual(seqs(got), [1, 2, 3]);
  assert.equal(dead.closed, true, "the dead task was closed");
  assert.ok(shim.maxOpen <= 1);
  room.close();
  assertClean(shim);
});

test("4001: the token is asked for once more, then the room stops", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const me = uid("t");
  const good = await viewerToken(me);

  const shim = new WxShim();
  const tokens = ["expired-or-forged", good];
  let asked = 0;
  const room = open(shim, roomId, async () => tokens[Math.min(asked++, 1)] as string);
  await live(room);
  assert.equal(asked, 2);
  assert.equal(room.welcome?.user.uid, me);
  room.close();
  assertClean(shim);

  const shim2 = new WxShim();
  let asked2 = 0;
  const refused = open(shim2, roomId, async () => {
    asked2 += 1;
    return "never-valid";
  });
  const closed = await waitFor(refused, "state", (s) => s.state === "closed");
  assert.equal(closed.code, 4001);
  assert.equal(asked2, 2);
  assert.equal(shim2.tasks.length, 2);
  assertClean(shim2);
});

test("4003 (banned) and 4004 (no such room) stop without reconnecting", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const me = uid("b");
  const shim = new WxShim();
  // A tiny back-off: a wrong reconnect would show up within the wait below.
  const fast = { backoffBaseMs: 10, backoffCapMs: 20 };
  const room = open(shim, roomId, () => viewerToken(me), fast);
  await live(room);
  const stopped = waitFor(room, "state", (s) => s.state === "closed");
  await ops.call("POST", "/api/v1/moderation/bans", { uid: me, seconds: 60 }, 201);
  assert.equal((await stopped).code, 4003);

  const shim2 = new WxShim();
  const missing = open(shim2, "rnosuchroom000", () => viewerToken(uid("n")), fast);
  assert.equal((await waitFor(missing, "state", (s) => s.state === "closed")).code, 4004);

  await new Promise((r) => setTimeout(r, 300));
  assert.equal(shim.tasks.length, 1, "no reconnect after 4003");
  assert.equal(shim2.tasks.length, 1, "no reconnect after 4004");
  assertClean(shim);
  assertClean(shim2);
});

test("grabs a red packet and enters a lottery", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const me = uid("g");
  const shim = new WxShim();
  const room = open(shim, roomId, () => viewerToken(me), { codec: "msgpack" });
  await live(room);

  const announced = waitFor(room, "rp");
  const packet = await ops.call("POST", `/api/v1/rooms/${roomId}/red-packets`, { total_fen: 1000, count: 2 }, 201);
  assert.equal((await announced).id, packet.id);
  const share = await room.grab(packet.id as string);
  assert.ok(share.amount_fen >= 1 && share.amount_fen <= 999);
  assert.equal(share.left, 1);
  await assert.rejects(room.grab(packet.id as string), (e: InteractError) => e.code === "already_grabbed" && e.ack?.amount_fen === share.amount_fen);
  await assert.rejects(room.grab(`${roomId}.rp0000000000`), (e: InteractError) => e.code === "not_found");

  const opened = waitFor(room, "lot");
  const lottery = await ops.call(
    "POST",
    `/api/v1/rooms/${roomId}/lotteries`,
    { prize: "福袋", winners: 1, condition: { kind: "enter" }, duration: 600 },
    201,
  );
  assert.equal((await opened).id, lottery.id);
  assert.deepEqual(await room.enter(lottery.id as string), { entries: 1 });
  await assert.rejects(room.enter(lottery.id as string), (e: InteractError) => e.code === "conflict");
  const drawn = waitFor(room, "lot_result");
  await ops.call("POST", `/api/v1/lotteries/${lottery.id}/draw`, undefined, 200);
  assert.deepEqual((await drawn).winners, [me]);
  room.close();
  assertClean(shim);
});

test("likes are coalesced: one frame per period, every tap counted", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const shim = new WxShim();
  const room = open(shim, roomId, () => viewerToken(uid("l")));
  await live(room);
  const started = Date.now();
  for (let round = 0; round < 10; round++) {
    for (let tap = 0; tap < 12; tap++) room.like();
    await new Promise((r) => setTimeout(r, 60));
  }
  await waitFor(room, "like", (m) => m.total === 120);
  const elapsed = Date.now() - started;
  const likeFrames = shim.framesOut.filter((f) => typeof f === "string" && f.includes('"t":"like"'));
  // One frame at once, then at most one per 400 ms while taps keep coming.
  assert.ok(likeFrames.length <= Math.ceil(elapsed / 400) + 1, `${likeFrames.length} frames in ${elapsed} ms`);
  const sent = likeFrames.map((f) => (JSON.parse(f as string) as { n: number }).n);
  assert.equal(sent.reduce((a, b) => a + b, 0), 120, "every tap sent, in fewer frames");
  room.close();
  assertClean(shim);
});

test(`the 6th socket is refused by the platform; the SDK recovers when one frees`, { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const shim = new WxShim();
  const rooms: Room[] = [];
  for (let i = 0; i < MAX_SOCKETS; i++) {
    const id = uid("five");
    rooms.push(open(shim, roomId, () => viewerToken(id)));
  }
  await Promise.all(rooms.map(live));
  const sixthId = uid("six");
  const sixth = open(shim, roomId, () => viewerToken(sixthId), { backoffBaseMs: 50, backoffCapMs: 100 });
  // The refused task reports onError; the SDK takes it as gone and tries again later.
  await shim.refused;
  assert.notEqual(sixth.state, "live");
  assert.equal(shim.openCount, MAX_SOCKETS);
  rooms[0]?.close();
  await live(sixth);
  assert.equal(sixth.welcome?.user.uid, sixthId);
  assert.ok(shim.maxOpen <= MAX_SOCKETS);
  for (const r of [...rooms, sixth]) r.close();
  assertClean(shim);
});

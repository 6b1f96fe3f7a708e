/**
 * Server processes that die or go away, on the Redis engine: two `interact serve`
 * processes on one private `redis-server`, a viewer on one and a sender on the other.
 * A crash (SIGKILL) and restart on the same port, and a graceful shutdown (SIGTERM, close
 * 1001) with the viewer's url moved to the other process: no comment missed, doubled or
 * out of order, and a 1001 reconnects at once rather than after the back-off.
 */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { Comment, Gap, Room, RoomOptions, createRoom } from "../src/index";
import { comments, live, stampConnects, stampStates, until, waitFor } from "./events";
import { Api, Redis, SECRET, Server, Switch, serverHistory, startRedis, startServer } from "./server";
import { WxShim } from "./wxshim";

let redis: Redis;
let a: Server;
let b: Server;
let ops: Api;
let uidCounter = 0;

function env(): Record<string, string> {
  return {
    INTERACT_REDIS_URL: redis.url,
    INTERACT_DEV_LOGIN: "true",
    INTERACT_SECRET: SECRET,
    INTERACT_ONLINE_INTERVAL: "0.5",
  };
}

before(async () => {
  redis = await startRedis();
  [a, b] = await Promise.all([startServer(env()), startServer(env())]);
  ops = await Api.login(a.base, "ops", "operator");
});

const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.stop();
});

function open(url: string, roomId: string, prefix: string, extra: Partial<RoomOptions> & { wx?: WxShim } = {}): Room {
  uidCounter += 1;
  const me = `${prefix}${uidCounter}-${process.pid}`;
  // Tokens are signed with the shared secret: any process's dev login serves any process.
  const getToken = async (): Promise<string> => (await Api.login(b.base, me)).token;
  const room = createRoom({ url, roomId, getToken, wx: extra.wx ?? new WxShim(), random: () => 0.5, ...extra });
  opened.push(room);
  return room;
}

/** A viewer on process B that comments every `everyMs` until stopped: the seqs acked. */
function sender(roomId: string, everyMs: number): { acked: number[]; texts: Map<number, string>; stop: () => Promise<void> } {
  const room = open(b.ws, roomId, "s");
  const acked: number[] = [];
  const texts = new Map<number, string>();
  let running = true;
  const loop = (async () => {
    await live(room);
    for (let i = 1; running; i++) {
      const text = `c${i}`;
      const seq = await room.send(text);
      assert.equal(typeof seq, "number", "sent comments are published, not held");
      acked.push(seq as number);
      texts.set(seq as number, text);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  loop.catch(() => undefined); // awaited by stop(); a failed test must not leave it unhandled
  return {
    acked,
    texts,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

function assertExactlyOnceInOrder(got: Comment[], acked: number[], texts: Map<number, string>): void {
  const seqs = got.map((c) => c.seq);
  assert.deepEqual(seqs, acked, "the page has every acked comment, once each, in seq order");
  for (const c of got) assert.equal(c.text, texts.get(c.seq));
}

async function assertServerHistory(roomId: string, epoch: string, acked: number[]): Promise<void> {
  const token = (await Api.login(b.base, `h${process.pid}`)).token;
  const held = await serverHistory(b.ws, roomId, token, epoch);
  assert.equal(held.recovered, true);
  assert.deepEqual(
    held.history.map((c) => c.seq),
    acked,
    "the server's history is the sender's acked comments",
  );
}

test("a process killed mid-stream and restarted on its port: nothing missed or doubled", { timeout: 90000 }, async () => {
  const roomId = await ops.liveRoom("crash");
  const shim = new WxShim();
  // A short back-off, so the viewer finds the restarted process soon after it is up.
  const viewer = open(a.ws, roomId, "v", { wx: shim, backoffBaseMs: 200, backoffCapMs: 1000 });
  const got = comments(viewer);
  const gaps: Gap[] = [];
  viewer.on("gap", (g) => gaps.push(g));
  await live(viewer);
  const epoch = viewer.welcome?.epoch as string;

  const s = sender(roomId, 15);
  await waitFor(viewer, "dm", (c) => c.seq >= 40);
  const dropped = waitFor(viewer, "state", (st) => st.state === "reconnecting");
  await a.kill();
  assert.equal((await dropped).code, 1006, "a killed process sends no close frame");
  const ackedWhileDown = s.acked.length;
  const welcomed = waitFor(viewer, "welcome", () => true, 30000);
  a = await a.restart();
  const back = await welcomed;
  assert.equal(back.recovered, true);
  assert.equal(back.epoch, epoch, "Redis kept the room's numbering");
  assert.ok(s.acked.length > ackedWhileDown, "the sender kept going on B while A was down");
  const afterBack = s.acked.length;
  await until(() => s.acked.length >= afterBack + 30, "30 more comments after the return");
  await s.stop();
  const last = s.acked[s.acked.length - 1] as number;
  if (got[got.length - 1]?.seq !== last) await waitFor(viewer, "dm", (c) => c.seq === last);

  assertExactlyOnceInOrder(got, s.acked, s.texts);
  assert.equal(gaps.length, 0);
  assert.ok(shim.tasks.length >= 2);
  assert.match(shim.last.url, new RegExp(`&since=\\d+&epoch=${epoch}$`));
  assert.ok(shim.maxOpen <= 1, `at most one socket open, saw ${shim.maxOpen}`);
  assert.deepEqual(shim.failedCloses, []);
  await assertServerHistory(roomId, epoch, s.acked);
});

test("a graceful shutdown (1001) reconnects at once to the other process and recovers", { timeout: 60000 }, async () => {
  const roomId = await ops.liveRoom("goaway");
  const front = await new Switch(a.port).listen();
  try {
    const shim = new WxShim();
    const connects = stampConnects(shim);
    // The back-off path would wait 0.99 × 10 s: only the at-once path fits the bound below.
    const viewer = open(front.ws, roomId, "g", { wx: shim, random: () => 0.99, backoffBaseMs: 10000, backoffCapMs: 10000 });
    const states = stampStates(viewer);
    const got = comments(viewer);
    await live(viewer);
    const epoch = viewer.welcome?.epoch as string;

    const s = sender(roomId, 15);
    await waitFor(viewer, "dm", (c) => c.seq >= 20);
    // The balancer stops sending new connections to A, then A is told to shut down.
    front.point(b.port);
    const goingAway = waitFor(viewer, "state", (st) => st.state === "reconnecting");
    const welcomed = waitFor(viewer, "welcome");
    const stopped = a.stop();
    const close = await goingAway;
    assert.equal(close.code, 1001);
    const welcome = await welcomed;
    assert.equal(await stopped, 0, "A exits cleanly on SIGTERM");
    const closedAt = states.find((st) => st.code === 1001)?.at as number;
    assert.equal(connects.length, 2, "one reconnection, which succeeded");
    const reconnectMs = (connects[1] as number) - closedAt;
    assert.ok(reconnectMs < 1500, `reconnected ${reconnectMs} ms after the 1001 (back-off would be 9.9 s)`);
    assert.equal(welcome.recovered, true);
    assert.equal(welcome.epoch, epoch);

    a = await a.restart();
    const afterBack = s.acked.length;
    await until(() => s.acked.length >= afterBack + 20, "20 more comments after the return");
    await s.stop();
    const last = s.acked[s.acked.length - 1] as number;
    if (got[got.length - 1]?.seq !== last) await waitFor(viewer, "dm", (c) => c.seq === last);
    assertExactlyOnceInOrder(got, s.acked, s.texts);
    assert.deepEqual(
      states.map((st) => st.state),
      ["live", "reconnecting", "live"],
    );
    assert.deepEqual(shim.failedCloses, []);
    // The restarted A serves the room from Redis, history and all.
    const token = (await Api.login(a.base, `h2${process.pid}`)).token;
    const held = await serverHistory(a.ws, roomId, token, epoch);
    assert.deepEqual(
      held.history.map((c) => c.seq),
      s.acked,
    );
  } finally {
    await front.close();
  }
});

/**
 * A viewer the server finds too slow (close 4029, docs/protocol.md §8): the SDK reconnects
 * at once, not after its back-off, and recovers the comments the server skipped for it.
 * The buffer limits are shrunk; the kernel's socket buffers still take ~4 MB of notices first.
 */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { Room, createRoom } from "../src/index";
import { comments, live, stampConnects, stampStates, until, waitFor } from "./events";
import { Api, Server, metric, startServer } from "./server";
import { ShimTask, WxShim } from "./wxshim";

let server: Server;
let ops: Api;

before(async () => {
  server = await startServer({
    INTERACT_SOFT_BUFFER_BYTES: "16384",
    INTERACT_HARD_BUFFER_BYTES: "65536",
    INTERACT_SLOW_GRACE: "0.3",
    INTERACT_COMPRESSION: "off",
  });
  ops = await Api.login(server.base, "ops", "operator");
});

const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

after(async () => {
  await server?.stop();
});

/** Read again from a socket `stall()`ed: what the kernel held arrives, then the close. */
function unstall(task: ShimTask): void {
  (task.ws as unknown as { _socket?: { resume(): void } })?._socket?.resume();
}

test("4029 (too slow) reconnects at once and recovers what the server skipped", { timeout: 60000 }, async () => {
  const roomId = await ops.liveRoom("slow");
  const shim = new WxShim();
  const connects = stampConnects(shim);
  const me = `slow-${process.pid}`;
  // The back-off path would wait 0.99 × 10 s: only the at-once path fits the bound below.
  const viewer = createRoom({
    url: server.ws,
    roomId,
    getToken: async () => (await Api.login(server.base, me)).token,
    wx: shim,
    random: () => 0.99,
    backoffBaseMs: 10000,
    backoffCapMs: 10000,
  });
  opened.push(viewer);
  const states = stampStates(viewer);
  const got = comments(viewer);
  const gaps: unknown[] = [];
  viewer.on("gap", (g) => gaps.push(g));
  await live(viewer);
  const fifth = waitFor(viewer, "dm", (c) => c.seq === 5); // listening before it can arrive
  for (let i = 1; i <= 5; i++) await ops.publish(roomId, `before ${i}`);
  await fifth;

  const stalled = shim.last;
  stalled.stall();
  // Notices ride the priority lane, sent even to a slow viewer: they push its unsent
  // bytes past the soft limit (comments are skipped for it from then on) and the hard
  // one, and the server closes it after the grace. A comment follows each round.
  let seq = 5;
  const closedBefore = await metric(server, "interact_slow_closed_total");
  const text = "告".repeat(500);
  let notices = 0;
  await until(
    async () => {
      if ((await metric(server, "interact_slow_closed_total")) > closedBefore) return true;
      await Promise.all(
        Array.from({ length: 40 }, () => ops.call("POST", `/api/v1/rooms/${roomId}/notices`, { text }, 202)),
      );
      notices += 40;
      seq = (await ops.publish(roomId, `stalled ${seq + 1}`)).seq as number;
      return false;
    },
    "the server to close the stalled viewer",
    20000,
  );
  const tooSlow = waitFor(viewer, "state", (s) => s.state === "reconnecting");
  const welcomed = waitFor(viewer, "welcome");
  unstall(stalled);
  assert.equal((await tooSlow).code, 4029);
  const welcome = await welcomed;
  assert.equal(welcome.recovered, true);
  const closedAt = states.find((s) => s.code === 4029)?.at as number;
  assert.equal(connects.length, 2, "one reconnection, which succeeded");
  const reconnectMs = (connects[1] as number) - closedAt;
  assert.ok(reconnectMs < 1500, `reconnected ${reconnectMs} ms after the 4029 (back-off would be 9.9 s)`);

  const stalledUpTo = seq;
  for (let i = 1; i <= 5; i++) seq = (await ops.publish(roomId, `after ${i}`)).seq as number;
  if (got[got.length - 1]?.seq !== seq) await waitFor(viewer, "dm", (c) => c.seq === seq);
  assert.deepEqual(
    got.map((c) => c.seq),
    Array.from({ length: seq }, (_, i) => i + 1),
    `every comment once, in order (after ${notices} notices)`,
  );
  // Those the server skipped while the viewer was slow came back with the welcome.
  assert.ok(welcome.history.length > 0, "comments were skipped, then recovered");
  assert.ok(welcome.history.every((c) => c.seq > 5 && c.seq <= stalledUpTo));
  assert.equal(gaps.length, 0);
  assert.deepEqual(shim.failedCloses, []);
  assert.ok(shim.maxOpen <= 1);
});

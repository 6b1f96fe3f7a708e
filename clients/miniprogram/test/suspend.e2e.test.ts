/**
 * The app's lifecycle against a real `interact serve`: going to the background closes with
 * 4100 (the server keeps the viewer's place), coming back resumes with since/epoch, and a
 * network change reconnects at once.
 */
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { CLOSE_SUSPENDED, Comment, Room, RoomOptions, RoomState, createRoom } from "../src/index";
import { live, waitFor } from "./events";
import { Api, Server, startServer } from "./server";
import { WxShim } from "./wxshim";

let server: Server;
let ops: Api;
let uidCounter = 0;

before(async () => {
  // Online counts every 0.3 s: a count that dropped would show within the test.
  server = await startServer({ INTERACT_ONLINE_INTERVAL: "0.3" });
  ops = await Api.login(server.base, "ops", "operator");
});

const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

after(async () => {
  await server?.stop();
});

function open(shim: WxShim, roomId: string, prefix: string, extra: Partial<RoomOptions> = {}): Room {
  uidCounter += 1;
  const me = `${prefix}${uidCounter}-${process.pid}`;
  const getToken = async (): Promise<string> => (await Api.login(server.base, me)).token;
  const room = createRoom({ url: server.ws, roomId, getToken, wx: shim, random: () => 0.5, ...extra });
  opened.push(room);
  return room;
}

/** The room's online counts as the server announces them, from its welcome on. */
function onlineCounts(room: Room): number[] {
  const counts: number[] = [];
  room.on("welcome", (w) => counts.push(w.online));
  room.on("online", (m) => counts.push(m.count as number));
  return counts;
}

async function onlineReaches(room: Room, counts: number[], n: number): Promise<void> {
  if (counts[counts.length - 1] !== n) await waitFor(room, "online", (m) => m.count === n);
}

test("background then resume: nothing missed or doubled, online never dropped", { timeout: 60000 }, async () => {
  const roomId = await ops.liveRoom();
  const watcher = open(new WxShim(), roomId, "w");
  const seenOnline = onlineCounts(watcher);
  await live(watcher);
  const shim = new WxShim();
  const viewer = open(shim, roomId, "v");
  const states: RoomState[] = [];
  viewer.on("state", (s) => states.push(s.state));
  const got: Comment[] = [];
  viewer.on("dm", (c) => got.push(c));
  const gaps: unknown[] = [];
  viewer.on("gap", (g) => gaps.push(g));
  await live(viewer);
  await onlineReaches(watcher, seenOnline, 2);
  const fromTwo = seenOnline.length - 1;
  // Listen first: a quiet room may deliver the comment before publish() has its answer.
  const first = waitFor(viewer, "dm", (c) => c.seq === 1);
  await ops.publish(roomId, "before");
  await first;

  // In the background for 2 s, through the platform's network cut at the end of it.
  const cut = shim.hide(2000);
  assert.equal(viewer.state, "suspended");
  assert.deepEqual(shim.closeCodes, [CLOSE_SUSPENDED]);
  await assert.rejects(viewer.send("while hidden"), { code: "not_connected" });
  for (let i = 0; i < 20; i++) await ops.publish(roomId, `away ${i}`);
  // A third viewer joins while the second is away: the first count announced after the
  // suspension must still hold the suspended place (3, not 2).
  const late = open(new WxShim(), roomId, "x");
  await live(late);
  await onlineReaches(watcher, seenOnline, 3);
  await cut;

  const resumed = waitFor(viewer, "state", (s) => s.state === "live");
  shim.show();
  await resumed;
  if (got[got.length - 1]?.seq !== 21) await waitFor(viewer, "dm", (c) => c.seq === 21);
  assert.equal(viewer.welcome?.recovered, true);
  assert.match(shim.last.url, /&since=1&epoch=/);
  late.close();
  await onlineReaches(watcher, seenOnline, 2);
  const last = waitFor(viewer, "dm", (c) => c.seq === 22);
  await ops.publish(roomId, "after");
  await last;

  assert.deepEqual(
    got.map((c) => c.seq),
    Array.from({ length: 22 }, (_, i) => i + 1),
  );
  assert.equal(gaps.length, 0);
  assert.deepEqual(states, ["live", "suspended", "live"]);
  const since = seenOnline.slice(fromTwo);
  assert.ok(since.every((n) => n >= 2 && n <= 3), `online counts after both joined: ${since}`);
  assert.ok(shim.maxOpen <= 1, `at most one socket open, saw ${shim.maxOpen}`);
  assert.deepEqual(shim.failedCloses, [], "a task was closed twice");
  viewer.close();
  assert.equal(shim.listeners, 0, "a closed room stops listening to the app's lifecycle");
});

test("a network that comes back reconnects at once, not after the back-off", { timeout: 30000 }, async () => {
  const roomId = await ops.liveRoom();
  const shim = new WxShim();
  // A back-off of 30 s: only the network event can bring the room back within the test.
  const room = open(shim, roomId, "n", { backoffBaseMs: 60000, backoffCapMs: 60000 });
  const got: Comment[] = [];
  room.on("dm", (c) => got.push(c));
  await live(room);
  const reconnecting = waitFor(room, "state", (s) => s.state === "reconnecting");
  shim.last.cut();
  await reconnecting;
  await ops.publish(roomId, "while offline");
  shim.networkChange(false);
  assert.equal(room.state, "reconnecting", "no network: nothing to do yet");
  const back = waitFor(room, "state", (s) => s.state === "live", 10000);
  shim.networkChange(true, "4g");
  await back;
  if (got.length === 0) await waitFor(room, "dm", (c) => c.seq === 1);
  assert.deepEqual(
    got.map((c) => c.text),
    ["while offline"],
  );
  assert.equal(room.welcome?.recovered, true);
  assert.equal(shim.tasks.length, 2);
  assert.deepEqual(shim.failedCloses, []);
});

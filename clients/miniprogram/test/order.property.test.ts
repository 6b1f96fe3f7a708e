/**
 * The ordering and dedupe rules against random interleavings of publishing, live delivery
 * (with sampling), late duplicates, disconnects, reconnects that recover or not, overlapping
 * histories and epoch restarts: the page never sees a comment twice or out of order, and
 * when no gap was reported and nothing was sampled out, it sees every comment.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Cursor, START, onComment, onWelcome, recoveryQuery } from "../src/order";

type Step =
  | { kind: "publish"; n: number }
  | { kind: "live"; drop: boolean }
  | { kind: "dup"; pick: number }
  | { kind: "disconnect" }
  | { kind: "reconnect"; recover: boolean; overlap: number; recent: number }
  | { kind: "newEpoch" };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("publish" as const), n: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("live" as const), drop: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("dup" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ kind: "disconnect" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("reconnect" as const),
      recover: fc.boolean(),
      overlap: fc.integer({ min: 0, max: 3 }),
      recent: fc.integer({ min: 0, max: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "newEpoch" as const }) },
);

interface Delivered {
  epoch: string;
  seq: number;
}

function run(steps: Step[], allowDrops: boolean, allowUnrecovered: boolean) {
  let epochNo = 0;
  let epoch = "e0";
  let published = 0; // comments 1..published exist in `epoch`
  let connected = false;
  let liveQueue: number[] = [];
  let cursor: Cursor = START;
  let gaps = 0;
  let dropped = 0;
  const delivered: Delivered[] = [];

  const welcome = (recover: boolean, overlap: number, recent: number): void => {
    // What the server would do with the query the client sends (docs/protocol.md §9).
    const query = recoveryQuery(cursor);
    const since = query ? Number(/since=(\d+)/.exec(query)?.[1]) : null;
    const sameEpoch = cursor.epoch === epoch;
    const recovered = recover && since !== null && sameEpoch && since <= published;
    const from = recovered ? Math.max(1, (since as number) + 1 - overlap) : Math.max(1, published - recent + 1);
    const history: { seq: number }[] = [];
    for (let s = from; s <= published; s++) history.push({ seq: s });
    const out = onWelcome(cursor, { epoch, seq: published, recovered, history });
    cursor = out.cursor;
    if (out.gap) gaps += 1;
    for (const c of out.deliver) delivered.push({ epoch, seq: c.seq });
    connected = true;
    liveQueue = [];
  };

  welcome(false, 0, 0);
  for (const s of steps) {
    switch (s.kind) {
      case "publish":
        for (let i = 0; i < s.n; i++) {
          published += 1;
          if (connected) liveQueue.push(published);
        }
        break;
      case "live": {
        const seq = liveQueue.shift();
        if (seq === undefined) break;
        if (s.drop && allowDrops) {
          dropped += 1;
          break;
        }
        const out = onComment(cursor, { seq });
        cursor = out.cursor;
        if (out.deliver) delivered.push({ epoch, seq });
        break;
      }
      case "dup": {
        const mine = delivered.filter((d) => d.epoch === epoch);
        if (mine.length === 0) break;
        const again = mine[s.pick % mine.length] as Delivered;
        const out = onComment(cursor, { seq: again.seq });
        cursor = out.cursor;
        if (out.deliver) delivered.push({ epoch, seq: again.seq });
        break;
      }
      case "disconnect":
        connected = false;
        liveQueue = [];
        break;
      case "reconnect":
        welcome(s.recover || !allowUnrecovered, s.overlap, s.recent);
        break;
      case "newEpoch":
        if (!allowUnrecovered) break;
        epochNo += 1;
        epoch = `e${epochNo}`;
        published = 0;
        liveQueue = [];
        connected = false;
        break;
    }
  }
  // Finally the client catches up once more, recovering when the run allows only that.
  welcome(true, 0, 0);
  return { delivered, gaps, dropped, epoch, published };
}

function assertOrderedOnce(delivered: Delivered[]): void {
  const seen = new Set<string>();
  const left = new Set<string>();
  let current: Delivered | null = null;
  for (const d of delivered) {
    const key = `${d.epoch}/${d.seq}`;
    assert.ok(!seen.has(key), `delivered twice: ${key}`);
    seen.add(key);
    if (current !== null && current.epoch === d.epoch) {
      assert.ok(d.seq > current.seq, `out of order: ${current.seq} then ${d.seq}`);
    } else {
      assert.ok(!left.has(d.epoch), `epoch ${d.epoch} came back`);
      if (current !== null) left.add(current.epoch);
    }
    current = d;
  }
}

test("never twice, never out of order, whatever the interleaving", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
      assertOrderedOnce(run(steps, true, true).delivered);
    }),
    { numRuns: 500 },
  );
});

test("without sampling and with every reconnect recovered, every comment arrives exactly once", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
      const out = run(steps, false, false);
      assertOrderedOnce(out.delivered);
      assert.equal(out.gaps, 0);
      const seqs = out.delivered.map((d) => d.seq);
      assert.deepEqual(seqs, Array.from({ length: out.published }, (_, i) => i + 1));
    }),
    { numRuns: 500 },
  );
});

test("a reconnect that could not recover is reported as a gap, and only then", () => {
  const first = onWelcome(START, { epoch: "a", seq: 3, recovered: false, history: [{ seq: 2 }, { seq: 3 }] });
  assert.equal(first.gap, false, "the first welcome is not a gap");
  assert.deepEqual(first.deliver.map((c) => c.seq), [2, 3]);
  const same = onWelcome(first.cursor, { epoch: "a", seq: 9, recovered: false, history: [{ seq: 3 }, { seq: 8 }, { seq: 9 }] });
  assert.equal(same.gap, true);
  assert.deepEqual(same.deliver.map((c) => c.seq), [8, 9]);
  const restarted = onWelcome(same.cursor, { epoch: "b", seq: 1, recovered: false, history: [{ seq: 1 }] });
  assert.equal(restarted.gap, true);
  assert.deepEqual(restarted.deliver.map((c) => c.seq), [1], "a new epoch restarts the numbering");
  assert.equal(recoveryQuery(restarted.cursor), "&since=1&epoch=b");
});

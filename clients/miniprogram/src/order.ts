/**
 * Ordering and dedupe of comments, as pure functions: the page sees each comment once and
 * in `seq` order within an epoch, whatever reconnects and replays bring. A new `epoch`
 * means the room's numbering restarted (docs/protocol.md §9), so the cursor restarts too.
 */

export interface Cursor {
  /** The epoch of `lastSeq`; null before the first welcome. */
  readonly epoch: string | null;
  /** The highest seq delivered (or covered by a welcome) in `epoch`. */
  readonly lastSeq: number;
}

export interface SeqComment {
  seq: number;
}

export interface WelcomeView<C extends SeqComment> {
  epoch: string;
  seq: number;
  recovered: boolean;
  history: C[];
}

export interface WelcomeOutcome<C extends SeqComment> {
  cursor: Cursor;
  /** Comments to hand to the page, in order. */
  deliver: C[];
  /**
   * True when this welcome followed an earlier one and the server could not replay what was
   * missed (`recovered: false`): comments may be missing, or the numbering restarted.
   */
  gap: boolean;
}

export const START: Cursor = { epoch: null, lastSeq: 0 };

function isSeq(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function onWelcome<C extends SeqComment>(
  cursor: Cursor,
  welcome: WelcomeView<C>,
): WelcomeOutcome<C> {
  const sameEpoch = cursor.epoch !== null && cursor.epoch === welcome.epoch;
  let last = sameEpoch ? cursor.lastSeq : 0;
  const deliver: C[] = [];
  // The history is sorted by the server; sorting again costs little and keeps the
  // guarantee local. Anything at or below `last` was delivered already.
  const sorted = welcome.history.filter((c) => isSeq(c.seq)).sort((a, b) => a.seq - b.seq);
  for (const comment of sorted) {
    if (comment.seq > last) {
      deliver.push(comment);
      last = comment.seq;
    }
  }
  if (isSeq(welcome.seq) && welcome.seq > last) last = welcome.seq;
  return {
    cursor: { epoch: welcome.epoch, lastSeq: last },
    deliver,
    gap: cursor.epoch !== null && !welcome.recovered,
  };
}

/** Whether a live `dm` goes to the page, and the cursor after it. */
export function onComment(cursor: Cursor, comment: SeqComment): { cursor: Cursor; deliver: boolean } {
  if (cursor.epoch === null || !isSeq(comment.seq) || comment.seq <= cursor.lastSeq) {
    return { cursor, deliver: false };
  }
  return { cursor: { epoch: cursor.epoch, lastSeq: comment.seq }, deliver: true };
}

/** The `since`/`epoch` query of a reconnect, or nothing before the first welcome. */
export function recoveryQuery(cursor: Cursor): string {
  if (cursor.epoch === null) return "";
  return `&since=${cursor.lastSeq}&epoch=${encodeURIComponent(cursor.epoch)}`;
}

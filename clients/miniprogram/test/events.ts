/** Waiting on a room's events in tests: one helper for every e2e file. */

import { Comment, Room, RoomEvent, RoomEvents, StateChange } from "../src/index";
import type { WxLike } from "../src/wx";

export function waitFor<E extends RoomEvent>(
  room: Room,
  event: E,
  pred: (p: RoomEvents[E]) => boolean = () => true,
  timeoutMs = 15000,
): Promise<RoomEvents[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} in ${timeoutMs} ms (state ${room.state})`));
    }, timeoutMs);
    const off = room.on(event, (p) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

export async function live(room: Room): Promise<void> {
  if (room.state !== "live") await waitFor(room, "state", (s) => s.state === "live");
}

/** Every connectSocket call's time, in order: when each (re)connection attempt began. */
export function stampConnects(shim: { connectSocket: WxLike["connectSocket"] }): number[] {
  const times: number[] = [];
  const original = shim.connectSocket.bind(shim);
  shim.connectSocket = (options) => {
    times.push(Date.now());
    return original(options);
  };
  return times;
}

export interface StampedState extends StateChange {
  at: number;
}

/** The room's state changes with the time each happened. */
export function stampStates(room: Room): StampedState[] {
  const states: StampedState[] = [];
  room.on("state", (s) => states.push({ ...s, at: Date.now() }));
  return states;
}

/** The page's comments, as a page would keep them. */
export function comments(room: Room): Comment[] {
  const got: Comment[] = [];
  room.on("dm", (c) => got.push(c));
  return got;
}

/** Poll `check` until it holds, or fail with `what` at the deadline. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

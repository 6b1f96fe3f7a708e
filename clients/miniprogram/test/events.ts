/** Waiting on a room's events in tests: one helper for every e2e file. */

import { Room, RoomEvent, RoomEvents } from "../src/index";

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

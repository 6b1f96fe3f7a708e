/**
 * Reconnect delays: exponential back-off with full jitter (AWS's "full jitter"): a delay
 * drawn uniformly in [0, min(cap, base * 2^attempt)). Full jitter spreads a room's viewers
 * over the whole window after a server restart, instead of bunching them at its top.
 */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 20000;

export function backoffDelay(
  attempt: number,
  random: () => number,
  base: number = BACKOFF_BASE_MS,
  cap: number = BACKOFF_CAP_MS,
): number {
  // 2^attempt overflows to Infinity past ~1024; min() keeps it at the cap.
  const ceiling = Math.min(cap, base * Math.pow(2, Math.max(0, attempt)));
  return Math.floor(random() * ceiling);
}

import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../src/backoff";

test("full jitter: uniform below min(cap, 500 ms * 2^attempt)", () => {
  assert.equal(backoffDelay(0, () => 0.999999), 499);
  assert.equal(backoffDelay(3, () => 0.5), 2000);
  assert.equal(backoffDelay(0, () => 0), 0);
  assert.equal(backoffDelay(6, () => 0.999999), 19999, "capped at 20 s");
  assert.equal(backoffDelay(5000, () => 0.5), 10000, "no overflow past the cap");
});

/** The size budget of the SDK's README: under 30 KB minified, without @msgpack/msgpack. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { buildSync } from "esbuild";

export const BUDGET_BYTES = 30 * 1024;

test("the SDK minified (without msgpack) stays under 30 KB", () => {
  const out = buildSync({
    entryPoints: [resolve(__dirname, "..", "..", "src", "index.ts")],
    bundle: true,
    minify: true,
    format: "cjs",
    target: "es2017",
    external: ["@msgpack/msgpack"],
    write: false,
  });
  const bytes = out.outputFiles[0]?.contents.length ?? 0;
  assert.ok(bytes > 1000, `${bytes} bytes: the bundle is missing code`);
  assert.ok(bytes < BUDGET_BYTES, `${bytes} bytes over the ${BUDGET_BYTES} budget`);
});

/**
 * The mini-program runtime is held to ES2017 here: the SDK's build, compiled with the
 * package's own tsconfig.json, must parse as ES2017 (no `?.`, `??`, class fields, object
 * spread, async iteration, BigInt, ... left in the output). @msgpack/msgpack is not held
 * to it: see the README's "Runtime syntax" (its 3.x build needs ES2022, its 2.x ES2018).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "acorn";
import ts from "typescript";

const PACKAGE = resolve(__dirname, "..", "..");

function es2017(source: string): string | null {
  try {
    parse(source, { ecmaVersion: 2017, sourceType: "script" });
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

test("the parser used below refuses what ES2017 lacks", () => {
  for (const newer of ["a?.b", "a ?? b", "class A { x = 1 }", "({...a})", "async function* g() {}", "1n", "try {} catch {}"]) {
    assert.notEqual(es2017(newer), null, newer);
  }
  assert.equal(es2017("class A { constructor() { this.x = 1; } } async function f() { await 1; }"), null);
});

test("the SDK compiles to ES2017 syntax, CommonJS", () => {
  const file = ts.findConfigFile(PACKAGE, ts.sys.fileExists, "tsconfig.json");
  assert.ok(file);
  const config = ts.parseJsonConfigFileContent(ts.readConfigFile(file, ts.sys.readFile).config, ts.sys, PACKAGE);
  assert.equal(config.options.target, ts.ScriptTarget.ES2017);
  assert.equal(config.options.module, ts.ModuleKind.CommonJS);
  const sources = readdirSync(join(PACKAGE, "src")).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  assert.ok(sources.includes("room.ts"));
  for (const name of sources) {
    const text = ts.sys.readFile(join(PACKAGE, "src", name)) as string;
    const out = ts.transpileModule(text, { compilerOptions: config.options, fileName: name }).outputText;
    assert.equal(es2017(out), null, `src/${name} compiles to syntax newer than ES2017`);
  }
});

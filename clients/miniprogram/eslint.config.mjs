// ESLint for the SDK (TypeScript: src/, test/) and the example mini-program's JavaScript
// (examples/miniprogram), run by `npm run lint` and before `npm test`. The example lies
// outside this folder, so `npm run lint` runs ESLint from the repository root with
// `--config` (which makes the working directory the base path); paths below are relative
// to that root.
import { fileURLToPath } from "node:url";
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/", "**/build-test/", "**/node_modules/", "**/miniprogram_npm/"] },
  {
    files: ["clients/miniprogram/src/**/*.ts", "clients/miniprogram/test/**/*.ts"],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // The SDK itself is checked with types too: a floating promise or a misused one in
    // async connection code is a real bug, not a matter of style.
    files: ["clients/miniprogram/src/**/*.ts"],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: "./tsconfig.json", tsconfigRootDir: fileURLToPath(new URL(".", import.meta.url)) },
    },
    rules: {
      // The SDK compiles with two libs (ES2017 for dist, ES2022 for the tests): an assertion
      // that one needs (an ArrayBuffer out of ArrayBufferLike) looks unnecessary to the other.
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
    },
  },
  {
    // The tests read loosely typed JSON answers.
    files: ["clients/miniprogram/test/**/*.ts"],
    languageOptions: { globals: globals.node },
    rules: { "@typescript-eslint/no-explicit-any": "off", "@typescript-eslint/no-non-null-assertion": "off" },
  },
  {
    files: ["examples/miniprogram/**/*.js"],
    extends: [js.configs.recommended],
    languageOptions: {
      ecmaVersion: 2017,
      sourceType: "commonjs",
      globals: {
        ...globals.commonjs,
        // The mini-program runtime's globals; timers and console exist there too.
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        console: "readonly",
        wx: "readonly",
        App: "readonly",
        Page: "readonly",
        Component: "readonly",
        getApp: "readonly",
        getCurrentPages: "readonly",
      },
    },
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // The example's unit tests run in Node (node:test).
    files: ["examples/miniprogram/test/**/*.js"],
    languageOptions: { ecmaVersion: 2022, globals: globals.node },
  },
);

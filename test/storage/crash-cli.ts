/** `npm run test:crash -- --rounds 50 [--seed N]`: the crash test, as long as you like. */
import { runCrashRounds } from "./crash-harness.js";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} takes a non-negative integer`);
  return n;
}

const rounds = flag("rounds", 50);
const seed = flag("seed", Date.now() % 2 ** 31);
console.log(`crash test: ${rounds} rounds, seed ${seed}`);
try {
  const result = await runCrashRounds({ rounds, seed, log: (line) => console.log(line) });
  console.log(`ok: ${result.acknowledged} acknowledged appends, all present after ${result.rounds} SIGKILLs; log head ${result.head}; ${result.unsureRounds} recoveries cut a torn record`);
} catch (err) {
  console.error(`FAILED (seed ${seed}): ${(err as Error).message}`);
  process.exitCode = 1;
}

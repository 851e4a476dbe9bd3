/**
 * npm run sim -- [--seeds N] [--start S] [--seed S] [--bug NAME] [--replicas 3|5]
 *
 * Runs seeded schedules against the real core and checks P1-P4 on each.
 * --seed S replays one seed exactly and prints its trace. A failure prints
 * its seed and the violated promise and exits 1.
 */
import { parseArgs } from "node:util";
import { PLANTED_BUG_NAMES, type TestOnlyPlantedBugs } from "../../src/core/replica.js";
import { runSeed } from "./run.js";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "200" },
    start: { type: "string", default: "1" },
    seed: { type: "string" },
    bug: { type: "string" },
    replicas: { type: "string" },
    quiet: { type: "boolean", default: false },
    "keep-going": { type: "boolean", default: false },
  },
  strict: true,
});

function bugsFrom(name: string | undefined): TestOnlyPlantedBugs {
  if (name === undefined) return {};
  const key = (PLANTED_BUG_NAMES as Record<string, keyof TestOnlyPlantedBugs>)[name];
  if (key === undefined) {
    console.error(`Unknown bug ${name}: one of ${Object.keys(PLANTED_BUG_NAMES).join(", ")}`);
    process.exit(2);
  }
  return { [key]: true };
}

const bugs = bugsFrom(values.bug);
const replicas = values.replicas === undefined ? undefined : Number(values.replicas);
const withReplicas = replicas === undefined ? {} : { replicas };

if (values.seed !== undefined) {
  const seed = Number(values.seed);
  const r = runSeed({ seed, bugs, trace: true, ...withReplicas });
  for (const line of r.trace) console.log(line);
  console.log(`seed ${seed}: ${r.replicas} replicas, ${r.opsChecked} operations checked, ${r.events} events`);
  for (const v of r.violations) console.log(`VIOLATION ${v.promise}: ${v.detail}`);
  console.log(r.ok ? "ok" : "FAILED");
  process.exit(r.ok ? 0 : 1);
}

const seeds = Number(values.seeds);
const start = Number(values.start);
const t0 = performance.now();
let ops = 0;
let events = 0;
const failed: number[] = [];
const byPromise = new Map<string, number>();
for (let seed = start; seed < start + seeds; seed++) {
  const r = runSeed({ seed, bugs, ...withReplicas });
  ops += r.opsChecked;
  events += r.events;
  if (!r.ok && values["keep-going"]) {
    failed.push(seed);
    const promise = r.violations[0]?.promise ?? "?";
    byPromise.set(promise, (byPromise.get(promise) ?? 0) + 1);
    continue;
  }
  if (!r.ok) {
    const first = r.violations[0];
    console.log(`seed ${seed} FAILED (${r.replicas} replicas): ${first?.promise ?? "?"}: ${first?.detail ?? ""}`);
    for (const v of r.violations.slice(1, 5)) console.log(`  also ${v.promise}: ${v.detail}`);
    console.log(`replay: npm run sim -- --seed ${seed}${values.bug === undefined ? "" : ` --bug ${values.bug}`}`);
    process.exit(1);
  }
  if (!values.quiet && (seed - start + 1) % 1000 === 0) console.log(`${seed - start + 1} seeds ok`);
}
const secs = (performance.now() - t0) / 1000;
if (failed.length > 0) {
  const kinds = [...byPromise].map(([k, n]) => `${k} ${n}`).join(", ");
  console.log(`${failed.length} of ${seeds} seeds FAILED (first violation: ${kinds}); first failing seeds: ${failed.slice(0, 10).join(" ")}`);
  process.exit(1);
}
console.log(`${seeds} seeds passed: ${ops} operations checked, ${events} events, ${(seeds / secs).toFixed(1)} seeds/s${values.bug === undefined ? "" : ` (with planted bug ${values.bug}: NOT caught)`}`);
process.exit(0);

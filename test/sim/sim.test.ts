/**
 * The simulator's bounded slice for `npm test`: clean seeds must pass, and
 * every planted protocol bug must be caught within 1000 seeds. The long runs
 * are `npm run sim -- --seeds 20000` and `--bug NAME --seeds 1000`.
 */
import { describe, expect, it } from "vitest";
import { PLANTED_BUG_NAMES, type TestOnlyPlantedBugs } from "../../src/core/replica.js";
import { runSeed } from "./run.js";

describe("simulator, clean seeds", () => {
  it("checks P1-P4 on 150 seeded fault schedules, 3 and 5 replicas", () => {
    const failures: string[] = [];
    let ops = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const r = runSeed({ seed });
      ops += r.opsChecked;
      if (!r.ok) failures.push(`seed ${seed}: ${r.violations.map((v) => `${v.promise}: ${v.detail}`).join("; ")}`);
    }
    expect(failures).toEqual([]);
    expect(ops).toBeGreaterThan(10_000);
  });

  it("passes the seeds that once found protocol bugs", () => {
    // 497: a mount stalled behind an inconsistent replica's log; 1150: a
    // silent follower was resynced on no evidence; 565: a candidate kept
    // running for an epoch another node had won; 17304: a replayed write was
    // acknowledged without the lease; 381: a base restarted with less than
    // it promised; 6955, 12831: a lost promise round erased the old lease,
    // so the next round did not wait for it; 8526: a stale answer restarted
    // a finished resync; 1841: a caught-up replica dropped acknowledged
    // records from its log at a region resync whose primary then failed,
    // leaving no log to bring the others forward (a livelock of mounts);
    // 3707, 1667: a region applied to while inconsistent (REGION_DIRTY)
    // compared equal to a primary's dirty one and was not copied; 279,
    // 283: a primary a replacement removed went before its followers knew
    // the final commit point; 486: a replica that missed a replacement
    // dropped the new primary's messages; 960: a replica down and another too
    // far behind for the log left the volume waiting though W were up; 3313,
    // 4170: no mount, and an uncommitted configuration or a replacement
    // waiting for a primary; 8028: the simulated disk checkpointed a mark
    // of consistency with data a later resync reset had changed; 8983: a
    // replacement asked while no mount was live; 13: a failover without
    // takeover during another client's takeover (it fails with
    // preempt-mount-in-progress planted: found on real processes first).
    // 2185 with 5 replicas: the simulator lost a write on a follower of an
    // operator's mount for a replacement, which then ended; with no mount
    // left, no primary compared the replicas (a fault outside its model:
    // the lost writes now go to the final client's mount only).
    // (Seeds replay today's schedules: the simulator's faults grew since
    // some of them were found.)
    const failures = [497, 1150, 565, 17304, 381, 432, 48, 9, 6955, 12831, 8526, 1841, 3707, 1667, 279, 283, 486, 960, 3313, 4170, 8028, 8983, 13].flatMap((seed) => {
      const r = runSeed({ seed });
      return r.ok ? [] : [`seed ${seed}: ${r.violations.map((v) => `${v.promise}: ${v.detail}`).join("; ")}`];
    });
    for (const seed of [2185]) {
      const r = runSeed({ seed, replicas: 5 });
      if (!r.ok) failures.push(`seed ${seed} (5 replicas): ${r.violations.map((v) => `${v.promise}: ${v.detail}`).join("; ")}`);
    }
    expect(failures).toEqual([]);
  });

  it("replays a seed exactly", () => {
    const a = runSeed({ seed: 42, trace: true });
    const b = runSeed({ seed: 42, trace: true });
    expect(b.trace).toEqual(a.trace);
    expect(a.trace.length).toBeGreaterThan(100);
  });
});

describe("simulator, planted bugs are caught", () => {
  // count-inconsistent is the slowest to show (first at seed 658 today).
  const SEEDS = 1000;
  for (const [name, key] of Object.entries(PLANTED_BUG_NAMES)) {
    it(`catches ${name} within ${SEEDS} seeds`, () => {
      const bugs: TestOnlyPlantedBugs = { [key]: true };
      let caught: string | null = null;
      for (let seed = 1; seed <= SEEDS && caught === null; seed++) {
        const r = runSeed({ seed, bugs });
        if (!r.ok) caught = `seed ${seed}: ${r.violations[0]?.promise ?? "?"}`;
      }
      expect(caught, `${name} was not caught in ${SEEDS} seeds`).not.toBeNull();
    });
  }
});

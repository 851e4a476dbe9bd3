/**
 * One seeded run: a safety phase with faults under a concurrent workload,
 * then a liveness phase that heals everything and requires every operation
 * to finish, a final read of every block, and the replicas to converge.
 */
import type { TestOnlyPlantedBugs } from "../../src/core/replica.js";
import { asNodeId, type NodeId } from "../../src/core/types.js";
import { LINEAR_BLOCKS, SIM_BLOCK_COUNT, SIM_TIMING, SimCluster } from "./cluster.js";

const SIM_LEASE_TICKS = SIM_TIMING.leaseTicks;
import { checkDurability, checkFencing, checkRegister, checkZeroableBlock, type Violation } from "./history.js";
import { Random } from "./random.js";

export interface SeedOptions {
  readonly seed: number;
  readonly bugs?: TestOnlyPlantedBugs;
  readonly trace?: boolean;
  /** 3 or 5; by default one seed in four runs five replicas. */
  readonly replicas?: number;
  readonly safetyTicks?: number;
  readonly livenessTicksMax?: number;
}

export interface SeedResult {
  readonly seed: number;
  readonly replicas: number;
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  /** Operations with a known outcome that the checker judged. */
  readonly opsChecked: number;
  readonly events: number;
  readonly trace: readonly string[];
}

export function runSeed(opts: SeedOptions): SeedResult {
  const replicas = opts.replicas ?? (opts.seed % 4 === 3 ? 5 : 3);
  const safetyTicks = opts.safetyTicks ?? 3000;
  const livenessTicksMax = opts.livenessTicksMax ?? 8000;
  const c = new SimCluster({ seed: opts.seed, replicas, bugs: opts.bugs ?? {}, safetyTicks, livenessTicksMax, trace: opts.trace ?? false });
  const rng = c.rng;
  const violations: Violation[] = [];
  try {
    c.addClient("c1", { ops: rng.int(40, 120), concurrency: rng.int(1, 3), takeover: false });
    if (rng.chance(0.8)) {
      const at = rng.int(100, safetyTicks / 2);
      const ops = rng.int(20, 80);
      const concurrency = rng.int(1, 3);
      const takeover = rng.chance(0.6);
      c.at(at, () => c.addClient("c2", { ops, concurrency, takeover }));
    }
    scheduleFaults(c, safetyTicks);
    scheduleCorruption(c, opts.seed, safetyTicks);
    scheduleReplacement(c, opts.seed, safetyTicks);
    c.runUntil(safetyTicks);

    // Liveness: heal everything, let every operation finish.
    c.liveness = true;
    c.heal();
    c.setLoss(0, 0);
    for (const id of c.replicaNodes()) c.restartNode(id);
    c.quiesceClients();
    const deadline = safetyTicks + livenessTicksMax;
    c.runUntil(deadline, () => c.clientsQuiet());
    if (!c.clientsQuiet()) violations.push({ promise: "P6", detail: `operations still unfinished ${livenessTicksMax} ticks after healing` });
    else {
      // One seed in three, a replica stays away until the last mount has
      // ended: only idle sync (P6 with no mount) can bring it back.
      const lateRng = new Random((opts.seed ^ 0x68e31da4) >>> 0);
      // (The one with a disk fault if there is one: N - W replicas may be faulty at once, not more.)
      const faulted = c.faultedReplicas().filter((n) => c.replicaNodes().includes(n));
      const late = lateRng.chance(1 / 3) ? lateRng.pick(faulted.length > 0 ? faulted : c.replicaNodes()) : null;
      if (late !== null) {
        // Once the others are in step: with one of them still to be resynced
        // as well, fewer than W replicas could serve until it returns.
        c.runUntil(deadline, () => c.converged().ok);
        c.crashNode(late);
      }
      c.addClient("final", { ops: 0, concurrency: 1, takeover: true, final: true });
      c.runUntil(deadline, () => c.finalDone());
      if (late !== null && c.finalDone()) {
        c.unmountFinal();
        c.at(SIM_LEASE_TICKS * 2, () => c.restartNode(late));
      }
      // One seed in three (when no replica stays away), a follower's disk
      // loses the writes to a region, or to one block of it (its region's
      // version stays): the scrub across replicas must find and repair it
      // before the replicas compare.
      const lost = late === null && lateRng.chance(1 / 3) ? (lateRng.chance(1 / 2) ? c.loseRegionOnFollower(lateRng) : c.loseBlockOnFollower(lateRng)) : null;
      if (!c.finalDone()) violations.push({ promise: "P6", detail: `the final client could not mount and read within ${livenessTicksMax} ticks of healing` });
      else {
        c.runUntil(deadline, () => c.converged().ok && (lost === null || c.compareReplicas().length === 0));
        const conv = c.converged();
        if (!conv.ok) violations.push({ promise: "P4", detail: `replicas did not converge within ${livenessTicksMax} ticks of healing: ${conv.why}` });
        else for (const d of c.compareReplicas()) violations.push({ promise: "P4", detail: d });
      }
    }
  } catch (e) {
    violations.push({ promise: "invariant", detail: (e as Error).stack ?? String(e) });
  }

  violations.push(...c.history.violations.filter((v) => v.promise !== "invariant" || !violations.some((x) => x.promise === "invariant")));
  violations.push(...checkFencing(c.history));
  let opsChecked = 0;
  for (let b = 0; b < SIM_BLOCK_COUNT; b++) {
    const ops = c.history.ops.filter((o) => o.block === b);
    opsChecked += ops.filter((o) => o.outcome === "ok").length;
    if (b < LINEAR_BLOCKS) violations.push(...checkRegister(b, ops));
    else violations.push(...checkZeroableBlock(b, ops));
    violations.push(...checkDurability(b, ops));
  }
  if (opts.trace === true) for (const line of c.describeReplicas()) c.trace(`final ${line}`);
  return { seed: opts.seed, replicas, ok: violations.length === 0, violations, opsChecked, events: c.eventsRun, trace: c.traceLines };
}

/**
 * Media corruption of block copies (rule 9, P5), from a random stream of
 * its own so the other faults of a seed stay as they were: up to three
 * blocks, each corrupted on one replica.
 */
function scheduleCorruption(c: SimCluster, seed: number, until: number): void {
  const rng = new Random((seed ^ 0x5bd1e995) >>> 0);
  const count = rng.int(0, 3);
  for (let i = 0; i < count; i++) {
    const at = rng.int(50, until - 1);
    c.at(at, () => {
      if (!c.liveness) c.corruptRandomBlock(rng);
    });
  }
}

/**
 * One seed in three replaces a replica with one on the spare node during
 * the faults (its own RNG: the other schedules stay as they were).
 */
function scheduleReplacement(c: SimCluster, seed: number, until: number): void {
  const rng = new Random((seed ^ 0x2545f491) >>> 0);
  if (!rng.chance(1 / 3)) return;
  const from = rng.pick(c.config.replicas);
  const to = asNodeId(`n${c.config.replicas.length + 1}`);
  c.at(rng.int(100, until - 500), () => c.replaceReplica(from, to));
}

function scheduleFaults(c: SimCluster, until: number): void {
  const rng = c.rng;
  let t = rng.int(50, 200);
  while (t < until) {
    const kind = rng.int(0, 10);
    c.at(t, () => injectFault(c, kind, c.replicaNodes()));
    t += rng.int(40, 300);
  }
}

function injectFault(c: SimCluster, kind: number, ids: readonly NodeId[]): void {
  if (c.liveness) return;
  const rng = c.rng;
  const restartLater = (id: NodeId): void => c.at(rng.int(30, 400), () => c.restartNode(id));
  switch (kind) {
    case 0:
    case 1: {
      const id = rng.pick(ids);
      c.crashNode(id);
      restartLater(id);
      return;
    }
    case 2: {
      const p = c.primaryNode();
      if (p === null) return;
      c.crashNode(p);
      restartLater(p);
      return;
    }
    case 3: {
      // Everything at once.
      for (const id of ids) c.crashNode(id);
      for (const id of ids) restartLater(id);
      return;
    }
    case 4:
    case 5: {
      const eps = rng.shuffle(c.endpoints());
      const k = rng.int(1, eps.length - 1);
      c.partition(eps.slice(0, k), eps.slice(k), rng.chance(0.3));
      c.at(rng.int(50, 400), () => c.heal());
      return;
    }
    case 6: {
      // The primary cut off from its peers (its client may still reach it).
      const p = c.primaryNode();
      if (p === null) return;
      c.partition([p], ids.filter((x) => x !== p), rng.chance(0.3));
      c.at(rng.int(50, 400), () => c.heal());
      return;
    }
    case 7: {
      c.setLoss(rng.float() * 0.2, rng.float() * 0.05);
      c.at(rng.int(50, 400), () => c.setLoss(0, 0));
      return;
    }
    case 8: {
      // The primary cut off from its client.
      const p = c.primaryNode();
      if (p === null) return;
      const clients = c.endpoints().filter((e) => !ids.includes(asNodeId(e)));
      c.partition([p], clients, rng.chance(0.5));
      c.at(rng.int(50, 400), () => c.heal());
      return;
    }
    case 9: {
      // Split-brain attempt: the primary is cut off from its peers (not from
      // its client) while it may still hold a lease, and another application
      // takes the volume over through one of them.
      const p = c.primaryNode();
      if (p === null) return;
      const via = rng.pick(ids.filter((x) => x !== p));
      c.partition([p], ids.filter((x) => x !== p), false);
      c.at(rng.int(100, 400), () => c.heal());
      c.takeoverVia("c3", via, rng.int(5, 20));
      return;
    }
    default:
      return;
  }
}

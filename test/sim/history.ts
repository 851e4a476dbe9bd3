/**
 * The recorded history of a run and the checker of P1-P3 over it.
 *
 * Per-block linearizability uses that every write's value is unique: each
 * write and the reads of its value form a cluster, and a history of one
 * register is linearizable iff no read precedes its write, no two clusters'
 * forward zones overlap, and no backward zone lies inside a forward zone
 * (Gibbons and Korach, "Testing shared memories", 1997). O(n log n).
 */

export interface HistoryOp {
  readonly client: string;
  readonly kind: "write" | "zero" | "read";
  readonly block: number;
  /** Written value (unique; 0 for trim and write-zeroes), or the value read. */
  value: number;
  readonly invoke: number;
  /** Null while pending or when the outcome is unknown. */
  complete: number | null;
  outcome: "pending" | "ok" | "unknown" | "dropped";
  /** For acknowledged writes: the epoch that acknowledged and when the primary decided to. */
  epoch?: number;
  decidedAt?: number;
  /** A read of the checker's final client, after healing. */
  readonly final?: boolean;
}

export interface Violation {
  readonly promise: string;
  readonly detail: string;
}

export interface History {
  readonly ops: HistoryOp[];
  readonly mounts: { readonly epoch: number; readonly time: number; readonly node: string }[];
  readonly violations: Violation[];
}

const INF = Number.POSITIVE_INFINITY;

function completeOf(op: HistoryOp): number {
  return op.outcome === "ok" && op.complete !== null ? op.complete : INF;
}

/** Linearizability of one register whose writes carry unique values (0 is the initial value). */
export function checkRegister(block: number, ops: readonly HistoryOp[]): Violation[] {
  const violations: Violation[] = [];
  const writes = new Map<number, HistoryOp>();
  const readsOf = new Map<number, HistoryOp[]>();
  for (const op of ops) {
    if (op.kind === "write") {
      writes.set(op.value, op);
    } else if (op.kind === "read" && op.outcome === "ok") {
      const list = readsOf.get(op.value) ?? [];
      list.push(op);
      readsOf.set(op.value, list);
    }
  }
  const forward: [number, number, number][] = [];
  const backward: [number, number, number][] = [];
  const clusterValues = new Set<number>([0, ...writes.keys()]);
  for (const [value] of readsOf) {
    if (!clusterValues.has(value)) {
      violations.push({ promise: "P3", detail: `block ${block}: a read returned value ${value}, which no write of this block wrote` });
    }
  }
  for (const value of clusterValues) {
    const reads = readsOf.get(value) ?? [];
    const w = writes.get(value);
    let wInvoke: number;
    let wComplete: number;
    if (value === 0) {
      if (reads.length === 0) continue;
      wInvoke = -INF;
      wComplete = -INF;
    } else {
      if (w === undefined) continue;
      if (w.outcome !== "ok" && reads.length === 0) continue; // it may never have happened
      wInvoke = w.invoke;
      wComplete = completeOf(w);
    }
    let low = wComplete;
    let high = wInvoke;
    for (const r of reads) {
      const rc = completeOf(r);
      if (rc < wInvoke) {
        violations.push({ promise: "P3", detail: `block ${block}: read of value ${value} ended (t=${rc}) before its write began (t=${wInvoke})` });
      }
      low = Math.min(low, rc);
      high = Math.max(high, r.invoke);
    }
    if (low < high) forward.push([low, high, value]);
    else backward.push([high, low, value]);
  }
  forward.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < forward.length; i++) {
    const prev = forward[i - 1] as [number, number, number];
    const cur = forward[i] as [number, number, number];
    if (cur[0] < prev[1]) {
      violations.push({ promise: "P3", detail: `block ${block}: values ${prev[2]} and ${cur[2]} were each read after the other was written (reads are not linearizable)` });
    }
  }
  for (const [a, b, value] of backward) {
    // The forward zone with the greatest start below a.
    let lo = 0;
    let hi = forward.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((forward[mid] as [number, number, number])[0] < a) {
        best = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let i = best; i >= 0 && i >= best - 1; i--) {
      const f = forward[i] as [number, number, number];
      if (f[0] < a && b < f[1]) {
        violations.push({ promise: "P3", detail: `block ${block}: value ${f[2]} was read after value ${value} had been written over it (a stale read)` });
        break;
      }
    }
  }
  return violations;
}

/**
 * P1: the final reads (after healing) show every acknowledged write, or a
 * newer one. A final value whose source ended before an acknowledged write
 * of another value began means that write was lost.
 */
export function checkDurability(block: number, ops: readonly HistoryOp[]): Violation[] {
  const finals = ops.filter((o) => o.kind === "read" && o.final === true && o.outcome === "ok");
  const acked = ops.filter((o) => o.kind !== "read" && o.outcome === "ok");
  const violations: Violation[] = [];
  for (const f of finals) {
    // Every op that could have produced the value read, and when it ended.
    const sources: number[] = [];
    if (f.value === 0) {
      sources.push(0);
      for (const o of ops) if (o.kind === "zero") sources.push(completeOf(o));
    } else {
      const w = ops.find((o) => o.kind === "write" && o.value === f.value);
      if (w !== undefined) sources.push(completeOf(w));
    }
    if (sources.length === 0) continue; // reported by the register check
    const latestSource = Math.max(...sources);
    const lost = acked.find((a) => a.value !== f.value && a.invoke > latestSource && completeOf(a) < f.invoke);
    if (lost !== undefined) {
      violations.push({
        promise: "P1",
        detail: `block ${block}: acknowledged ${lost.kind} of value ${lost.value} (epoch ${lost.epoch ?? "?"}) is lost: the final read returned ${f.value}`,
      });
    }
  }
  return violations;
}

/** P2: once a mount of epoch e returned, no write of an older epoch is acknowledged. */
export function checkFencing(history: History): Violation[] {
  const violations: Violation[] = [];
  const mounts = [...history.mounts].sort((a, b) => a.time - b.time);
  for (const op of history.ops) {
    if (op.kind === "read" || op.outcome !== "ok" || op.epoch === undefined || op.decidedAt === undefined) continue;
    const newer = mounts.find((m) => m.epoch > (op.epoch as number) && m.time < (op.decidedAt as number));
    if (newer !== undefined) {
      violations.push({
        promise: "P2",
        detail: `a write of epoch ${op.epoch} (block ${op.block}) was acknowledged after the mount of epoch ${newer.epoch} on ${newer.node} returned`,
      });
    }
  }
  return violations;
}

/** Blocks that also take trims and zeroes: a read returns zeros or a value written there before it ended. */
export function checkZeroableBlock(block: number, ops: readonly HistoryOp[]): Violation[] {
  const violations: Violation[] = [];
  for (const r of ops) {
    if (r.kind !== "read" || r.outcome !== "ok" || r.value === 0) continue;
    const w = ops.find((o) => o.kind === "write" && o.value === r.value);
    if (w === undefined || completeOf(r) < w.invoke) {
      violations.push({ promise: "P3", detail: `block ${block}: read returned value ${r.value}, never written there before the read ended` });
    }
  }
  return violations;
}

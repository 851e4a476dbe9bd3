/**
 * The checker of a fault-injection run's history: what a user of the volume
 * would call data loss, stale data or garbage, found from the operations
 * alone, plus the replicas' own checksums once the run has healed.
 *
 * Every write's value is unique (value.ts), so each block is a register
 * whose reads can be attributed to exactly one write. Per block:
 *
 * Linearizability (P3), Gibbons and Korach ("Testing shared memories",
 * 1997), O(n log n). A *cluster* is one write and the reads that returned
 * its value; the initial zeros are a write at -infinity. A write whose
 * outcome is unknown completes at +infinity and is dropped when nobody read
 * it; a "failed" write forms no cluster. For a cluster v let minC(v) be the
 * earliest completion and maxI(v) the latest invocation of its operations.
 * Since values are unique, any operation of v that ends before an operation
 * of u begins puts v's write before u's. The block is linearizable iff no
 * read ends before its write begins, and no two clusters u, v have
 * minC(v) < maxI(u) and minC(u) < maxI(v) (each precedes the other: Gibbons
 * and Korach's overlapping forward zones, or a backward zone inside a
 * forward one). A violation is counted per read: a read of v is counted
 * when it ended before v's write began, or when it began after minC(u) of a
 * cluster u that conflicts with v and was in place no earlier
 * (minC(u) >= minC(v)): it returned the older value after the newer one was
 * known to be in place. Every non-linearizable block has at least one such
 * read and every counted read is part of a violation; when two concurrent
 * reads contradict each other both are counted. Reads of a value that no
 * write wrote to that block, or of a "failed" write (also counted as
 * failed-write-visible), are non-linearizable too. The zeros are only the
 * initial value: the benchmark clients do not trim.
 *
 * Acknowledged writes (P1). An acknowledged write W is *contradicted* by a
 * read that began after W was acknowledged and returned an older value:
 * zeros, or a value whose write was acknowledged before W began. (A value
 * of a write with outcome unknown may have landed after W, so it never
 * contradicts W.) W is a **lost ack** when the block's last read (the final
 * verification read after healing, when the runner makes one) contradicts
 * it: the acknowledged data is gone. W is a **stale ack** when some read
 * contradicted it but the last read does not: the acknowledgement was not
 * true for a while (a stale read of acknowledged data, P3), the data came
 * back. So lostAcks + staleAcks counts the acknowledged writes that any
 * later read failed to see, and each is counted once.
 *
 * Fencing (P2). A mount M' of epoch e' by process q that returned ok at T
 * fences every older mount of every other process. A write's epoch is its
 * mountEpoch, raised to the epoch of any later ok mount of its own process
 * that returned before the write completed: the client library fails over
 * by mounting again with the same client identity and resends unacknowledged
 * writes under the new epoch (record such failovers as mount events). Then
 * a write with epoch < e' invoked after T and acknowledged is
 * **fenced-write-acked**, and a write with epoch < e' invoked after T whose
 * value anyone read is **fenced-write-visible** (counted per write). A write
 * invoked before T and acknowledged after it is only counted apart
 * (fencedWritesAckedInFlight, not a violation): the old primary may have
 * committed and acknowledged it before the new epoch was promised, its ack
 * still on the way (a delayed client link, a descheduled client process);
 * times taken at the clients cannot tell that from a zombie commit. A
 * zombie primary is still caught: its client goes on issuing writes after
 * T until it hears FENCED, and any of those acknowledged counts.
 *
 * Undecodable: every ok read that decoded to garbage, or to a value written
 * for another block.
 *
 * Divergence (P4): per region, the checksums reported by the replicas after
 * healing must all be equal; a region some replica did not report counts
 * as divergent too. Counted per region.
 *
 * Times are nanoseconds of one monotonic clock; the checker works on
 * offsets from the earliest time in the history, exact as doubles for 104
 * days of run.
 */
import type { HistoryEvent } from "./history.js";
import { valueKey, type BlockValue } from "./value.js";

/**
 * Per region, from Admin.RegionChecksums (its `digests`, in region order);
 * and, for the regions whose digests differ between replicas, every block's
 * checksum from Admin.BlockChecksums, so that they are compared block by block.
 */
export interface ReplicaChecksums {
  readonly node: string;
  readonly regions: readonly { region: number; checksum: number }[];
  readonly blocks?: readonly { region: number; block: number; checksum: number }[];
}

export interface CheckInput {
  readonly events: readonly HistoryEvent[];
  readonly finalChecksums?: readonly ReplicaChecksums[];
}

export type ViolationKind =
  | "lost-ack"
  | "stale-ack"
  | "non-linearizable"
  | "undecodable"
  | "fenced-write-acked"
  | "fenced-write-visible"
  | "failed-write-visible"
  | "divergent";

export interface Violation {
  readonly kind: ViolationKind;
  readonly block?: number;
  readonly message: string;
}

export interface CheckResult {
  readonly ok: boolean;
  /** Write, read and mount events, whatever their outcome. */
  readonly operations: number;
  readonly writesAcked: number;
  /** Reads with outcome ok (they returned bytes). */
  readonly reads: number;
  readonly lostAcks: number;
  readonly staleAcks: number;
  readonly nonLinearizableReads: number;
  readonly undecodableReads: number;
  readonly fencedWritesAcked: number;
  readonly fencedWritesVisible: number;
  /** Old-epoch writes invoked before a newer mount returned and acknowledged after it: legal if the ack was only late (see above), so not a violation. */
  readonly fencedWritesAckedInFlight: number;
  /** Writes with outcome "failed" whose value some read returned (their reads are non-linearizable too). */
  readonly failedWritesVisible: number;
  /** Blocks whose checksums differ between replicas (a divergent region without block checksums counts as one). */
  readonly divergentBlocks: number;
  /** Examples: at most VIOLATION_EXAMPLES_PER_KIND_MAX of a kind, VIOLATION_EXAMPLES_MAX in all. Counts are exact. */
  readonly violations: readonly Violation[];
}

export const VIOLATION_EXAMPLES_MAX = 50;
export const VIOLATION_EXAMPLES_PER_KIND_MAX = 10;

type WriteEvent = Extract<HistoryEvent, { type: "write" }>;
type ReadEvent = Extract<HistoryEvent, { type: "read" }>;

interface WriteOp {
  readonly ev: WriteEvent;
  readonly key: string;
  readonly invoke: number;
  /** +Infinity unless acknowledged. */
  readonly complete: number;
  /** When the writer learned the outcome, whatever it was: the client library resends nothing after. */
  readonly settled: number;
  cluster: Cluster | null;
  /** Some ok read returned its value. */
  read: boolean;
}

interface ReadOp {
  readonly ev: ReadEvent;
  readonly invoke: number;
  readonly complete: number;
}

interface Cluster {
  /** Null for the initial zeros. */
  readonly write: WriteOp | null;
  readonly reads: ReadOp[];
  minComplete: number;
  maxInvoke: number;
}

interface BlockOps {
  writes: WriteOp[];
  reads: ReadOp[];
}

class Findings {
  readonly violations: Violation[] = [];
  private readonly perKind = new Map<ViolationKind, number>();

  add(kind: ViolationKind, block: number | undefined, message: () => string): void {
    if (this.violations.length >= VIOLATION_EXAMPLES_MAX) return;
    const n = this.perKind.get(kind) ?? 0;
    if (n >= VIOLATION_EXAMPLES_PER_KIND_MAX) return;
    this.perKind.set(kind, n + 1);
    this.violations.push(block === undefined ? { kind, message: message() } : { kind, block, message: message() });
  }
}

/** Greatest value in a range, and the first index at or after `lo` whose value exceeds `x`, in O(log n). */
class MaxTree {
  private readonly size: number;
  private readonly tree: Float64Array;

  constructor(values: readonly number[]) {
    let size = 1;
    while (size < values.length) size *= 2;
    this.size = size;
    this.tree = new Float64Array(2 * size).fill(-Infinity);
    for (let i = 0; i < values.length; i++) this.tree[size + i] = values[i] as number;
    for (let i = size - 1; i >= 1; i--) this.tree[i] = Math.max(this.tree[2 * i] as number, this.tree[2 * i + 1] as number);
  }

  firstAbove(lo: number, x: number): number {
    return this.descend(1, 0, this.size - 1, lo, x);
  }

  private descend(node: number, nodeLo: number, nodeHi: number, lo: number, x: number): number {
    if (nodeHi < lo || (this.tree[node] as number) <= x) return -1;
    if (nodeLo === nodeHi) return nodeLo;
    const mid = (nodeLo + nodeHi) >> 1;
    const left = this.descend(2 * node, nodeLo, mid, lo, x);
    return left >= 0 ? left : this.descend(2 * node + 1, mid + 1, nodeHi, lo, x);
  }
}

function describeValue(v: BlockValue): string {
  return `${valueKey(v)} (epoch ${v.epoch})`;
}

/** Nanoseconds since `baseNs`, printed in ms for people reading violations. */
function ms(t: number): string {
  return Number.isFinite(t) ? `${(t / 1e6).toFixed(3)} ms` : t > 0 ? "never" : "the start";
}

function sameValue(a: BlockValue, b: BlockValue): boolean {
  return a.block === b.block && a.writer === b.writer && a.seq === b.seq && a.epoch === b.epoch;
}

/** Index of the first element of sorted `xs` greater than `x`. */
function upperBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The highest epoch of the ok mounts that returned before a time, among
 * every process but one: prefix maxima of the best two from distinct
 * processes, so each query is one binary search.
 */
class MountEpochs {
  private readonly times: number[] = [];
  private readonly best: { epoch: number; process: string }[] = [];
  private readonly secondEpoch: number[] = [];
  private readonly own = new Map<string, { times: number[]; maxEpoch: number[] }>();

  constructor(mounts: readonly { process: string; epoch: number; complete: number }[]) {
    const sorted = [...mounts].sort((a, b) => a.complete - b.complete);
    let best = { epoch: -1, process: "" };
    let second = -1;
    for (const m of sorted) {
      if (m.epoch > best.epoch) {
        if (m.process !== best.process) second = best.epoch;
        best = { epoch: m.epoch, process: m.process };
      } else if (m.process !== best.process && m.epoch > second) {
        second = m.epoch;
      }
      this.times.push(m.complete);
      this.best.push(best);
      this.secondEpoch.push(second);
      let own = this.own.get(m.process);
      if (own === undefined) {
        own = { times: [], maxEpoch: [] };
        this.own.set(m.process, own);
      }
      own.times.push(m.complete);
      own.maxEpoch.push(Math.max(m.epoch, own.maxEpoch.at(-1) ?? -1));
    }
  }

  /** The greatest epoch of another process's mount that returned strictly before `t` (-1 if none). */
  othersBefore(process: string, t: number): number {
    const n = this.countBefore(this.times, t);
    if (n === 0) return -1;
    const b = this.best[n - 1] as { epoch: number; process: string };
    return b.process !== process ? b.epoch : (this.secondEpoch[n - 1] as number);
  }

  /** The greatest epoch of this process's own mounts that returned strictly before `t` (-1 if none). */
  ownBefore(process: string, t: number): number {
    const own = this.own.get(process);
    if (own === undefined) return -1;
    const n = this.countBefore(own.times, t);
    return n === 0 ? -1 : (own.maxEpoch[n - 1] as number);
  }

  private countBefore(times: readonly number[], t: number): number {
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((times[mid] as number) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export function checkHistory(input: CheckInput): CheckResult {
  const findings = new Findings();
  const { events } = input;

  let baseNs: bigint | null = null;
  let lastNs = 0n;
  for (const e of events) {
    const t = e.type === "fault" ? e.atNs : e.invokeNs;
    if (baseNs === null || t < baseNs) baseNs = t;
    const end = e.type === "fault" ? (e.endNs ?? e.atNs) : e.completeNs;
    if (end > lastNs) lastNs = end;
  }
  const base = baseNs ?? 0n;
  // Below 2^53 (104 days of uptime) doubles are exact and so is their
  // difference; only past it pay for a bigint subtraction per time.
  const baseNumber = Number(base);
  const time = lastNs < 2n ** 53n ? (t: bigint): number => Number(t) - baseNumber : (t: bigint): number => Number(t - base);

  let operations = 0;
  let writesAcked = 0;
  let reads = 0;
  let undecodableReads = 0;
  const blocks = new Map<number, BlockOps>();
  const blockOps = (block: number): BlockOps => {
    let b = blocks.get(block);
    if (b === undefined) {
      b = { writes: [], reads: [] };
      blocks.set(block, b);
    }
    return b;
  };
  const mounts: { process: string; epoch: number; complete: number }[] = [];
  const writeKeys = new Set<string>();

  for (const e of events) {
    switch (e.type) {
      case "write": {
        operations++;
        if (e.outcome === "ok") writesAcked++;
        const key = valueKey(e.value);
        // A reused value would make reads ambiguous: the harness is broken, not the volume.
        if (writeKeys.has(key)) throw new Error(`Cannot check the history: value ${key} is written twice`);
        writeKeys.add(key);
        if (e.value.block !== e.block) throw new Error(`Cannot check the history: write of ${key} to block ${e.block} carries a value for block ${e.value.block}`);
        blockOps(e.block).writes.push({ ev: e, key, invoke: time(e.invokeNs), complete: e.outcome === "ok" ? time(e.completeNs) : Infinity, settled: time(e.completeNs), cluster: null, read: false });
        break;
      }
      case "read": {
        operations++;
        if (e.outcome !== "ok") break;
        reads++;
        if (e.read === undefined) throw new Error(`Cannot check the history: a read of block ${e.block} by ${e.process} is ok but has no data`);
        if (e.read.kind === "undecodable" || (e.read.kind === "value" && e.read.value.block !== e.block)) {
          undecodableReads++;
          const why = e.read.kind === "undecodable" ? e.read.reason : `it holds ${describeValue(e.read.value)}, written for block ${e.read.value.block}`;
          findings.add("undecodable", e.block, () => `Read of block ${e.block} by ${e.process} returned a block that does not decode: ${why}`);
          break;
        }
        blockOps(e.block).reads.push({ ev: e, invoke: time(e.invokeNs), complete: time(e.completeNs) });
        break;
      }
      case "mount":
        operations++;
        if (e.outcome === "ok") {
          if (e.epoch === undefined) throw new Error(`Cannot check the history: an ok mount by ${e.process} has no epoch`);
          mounts.push({ process: e.process, epoch: e.epoch, complete: time(e.completeNs) });
        }
        break;
      case "fault":
        break;
    }
  }

  let nonLinearizableReads = 0;
  let failedWritesVisible = 0;
  let lostAcks = 0;
  let staleAcks = 0;
  for (const [block, ops] of blocks) {
    const r = checkBlock(block, ops, findings);
    nonLinearizableReads += r.nonLinearizableReads;
    failedWritesVisible += r.failedWritesVisible;
    lostAcks += r.lostAcks;
    staleAcks += r.staleAcks;
  }

  const fencing = checkFencing(blocks, new MountEpochs(mounts), mounts, findings);
  const divergentBlocks = checkDivergence(input.finalChecksums ?? [], findings);

  const bad = lostAcks + staleAcks + nonLinearizableReads + undecodableReads + fencing.acked + fencing.visible + failedWritesVisible + divergentBlocks;
  return {
    ok: bad === 0,
    operations,
    writesAcked,
    reads,
    lostAcks,
    staleAcks,
    nonLinearizableReads,
    undecodableReads,
    fencedWritesAcked: fencing.acked,
    fencedWritesVisible: fencing.visible,
    fencedWritesAckedInFlight: fencing.inFlight,
    failedWritesVisible,
    divergentBlocks,
    violations: findings.violations,
  };
}

function checkBlock(block: number, ops: BlockOps, findings: Findings): { nonLinearizableReads: number; failedWritesVisible: number; lostAcks: number; staleAcks: number } {
  const byKey = new Map<string, WriteOp>();
  for (const w of ops.writes) byKey.set(w.key, w);

  const zeros: Cluster = { write: null, reads: [], minComplete: -Infinity, maxInvoke: -Infinity };
  const clusters: Cluster[] = [];
  const bad = new Set<ReadOp>();
  const failedSeen = new Set<WriteOp>();
  /** Reads that returned a value some write may have written, with when that write completed. */
  const attributed: { read: ReadOp; sourceComplete: number; label: string }[] = [];

  for (const r of ops.reads) {
    const d = r.ev.read;
    if (d === undefined || d.kind === "undecodable") continue; // filtered before
    if (d.kind === "zero") {
      zeros.reads.push(r);
      attributed.push({ read: r, sourceComplete: -Infinity, label: "zeros" });
      continue;
    }
    const w = byKey.get(valueKey(d.value));
    if (w === undefined || !sameValue(w.ev.value, d.value)) {
      bad.add(r);
      findings.add("non-linearizable", block, () => `Read of block ${block} by ${r.ev.process} returned ${describeValue(d.value)}, which no write of this block wrote`);
      continue;
    }
    w.read = true;
    if (w.ev.outcome === "failed") {
      bad.add(r);
      if (!failedSeen.has(w)) {
        failedSeen.add(w);
        findings.add("failed-write-visible", block, () => `Read of block ${block} by ${r.ev.process} returned ${describeValue(d.value)}, whose write failed (${w.ev.error ?? "no error recorded"}) and so must not have happened`);
      }
      continue;
    }
    if (w.cluster === null) {
      w.cluster = { write: w, reads: [], minComplete: w.complete, maxInvoke: w.invoke };
      clusters.push(w.cluster);
    }
    w.cluster.reads.push(r);
    attributed.push({ read: r, sourceComplete: w.complete, label: valueKey(w.ev.value) });
  }
  // Acknowledged writes nobody read still order the clusters around them.
  for (const w of ops.writes) {
    if (w.cluster === null && w.ev.outcome === "ok") {
      w.cluster = { write: w, reads: [], minComplete: w.complete, maxInvoke: w.invoke };
      clusters.push(w.cluster);
    }
  }
  if (zeros.reads.length > 0) clusters.push(zeros);

  const label = (c: Cluster): string => (c.write === null ? "zeros" : describeValue(c.write.ev.value));
  for (const c of clusters) {
    for (const r of c.reads) {
      c.minComplete = Math.min(c.minComplete, r.complete);
      c.maxInvoke = Math.max(c.maxInvoke, r.invoke);
      if (c.write !== null && r.complete < c.write.invoke) {
        bad.add(r);
        findings.add("non-linearizable", block, () => `Read of block ${block} by ${r.ev.process} returned ${label(c)} at ${ms(r.complete)}, before that write began at ${ms((c.write as WriteOp).invoke)}`);
      }
    }
  }

  // Gibbons-Korach: for each cluster v, the earliest-in-place cluster u
  // (minC(u) >= minC(v), u != v) with maxI(u) > minC(v); reads of v that
  // began after minC(u) returned v after u was in place.
  clusters.sort((a, b) => a.minComplete - b.minComplete);
  const tree = new MaxTree(clusters.map((c) => c.maxInvoke));
  let tieStart = 0;
  for (let p = 0; p < clusters.length; p++) {
    const v = clusters[p] as Cluster;
    if (p > 0 && (clusters[p - 1] as Cluster).minComplete !== v.minComplete) tieStart = p;
    if (v.reads.length === 0) continue;
    let j = tree.firstAbove(tieStart, v.minComplete);
    if (j === p) j = tree.firstAbove(p + 1, v.minComplete);
    if (j < 0) continue;
    const u = clusters[j] as Cluster;
    for (const r of v.reads) {
      if (r.invoke > u.minComplete && !bad.has(r)) {
        bad.add(r);
        findings.add(
          "non-linearizable",
          block,
          () => `Read of block ${block} by ${r.ev.process} at ${ms(r.invoke)} returned ${label(v)}, but ${label(u)} had replaced it by ${ms(u.minComplete)} (a stale or reverted read)`,
        );
      }
    }
  }

  // Acknowledged writes that a later read did not see.
  // The last read is the one begun last; among reads begun at the same
  // instant, the one that ended last, then the one with the oldest value, so
  // that the verdict does not depend on the order events were recorded in.
  attributed.sort((a, b) => a.read.invoke - b.read.invoke || a.read.complete - b.read.complete || b.sourceComplete - a.sourceComplete || 0);
  const invokes = attributed.map((a) => a.read.invoke);
  const suffixMin: number[] = new Array<number>(attributed.length + 1);
  const suffixArg: number[] = new Array<number>(attributed.length + 1);
  suffixMin[attributed.length] = Infinity;
  suffixArg[attributed.length] = -1;
  for (let i = attributed.length - 1; i >= 0; i--) {
    const s = (attributed[i] as { sourceComplete: number }).sourceComplete;
    const next = suffixMin[i + 1] as number;
    suffixMin[i] = s < next ? s : next;
    suffixArg[i] = s < next ? i : (suffixArg[i + 1] as number);
  }
  const last = attributed.at(-1);
  let lostAcks = 0;
  let staleAcks = 0;
  for (const w of ops.writes) {
    if (w.ev.outcome !== "ok") continue;
    const from = upperBound(invokes, w.complete);
    if (from >= attributed.length || (suffixMin[from] as number) >= w.invoke) continue;
    const witness = attributed[suffixArg[from] as number] as { read: ReadOp; label: string };
    const what = `acknowledged write of ${describeValue(w.ev.value)} to block ${block} (${ms(w.invoke)} to ${ms(w.complete)})`;
    if (last !== undefined && last.sourceComplete < w.invoke) {
      lostAcks++;
      findings.add("lost-ack", block, () => `Lost ${what}: the last read, by ${last.read.ev.process} at ${ms(last.read.invoke)}, returned ${last.label}, which is older`);
    } else {
      staleAcks++;
      findings.add("stale-ack", block, () => `Stale ${what}: a read by ${witness.read.ev.process} at ${ms(witness.read.invoke)} returned ${witness.label}, which is older (later reads saw it or newer)`);
    }
  }
  return { nonLinearizableReads: bad.size, failedWritesVisible: failedSeen.size, lostAcks, staleAcks };
}

function checkFencing(
  blocks: ReadonlyMap<number, BlockOps>,
  epochs: MountEpochs,
  mounts: readonly { process: string; epoch: number; complete: number }[],
  findings: Findings,
): { acked: number; visible: number; inFlight: number } {
  let acked = 0;
  let visible = 0;
  let inFlight = 0;
  const fencer = (process: string, epoch: number, t: number): string => {
    const m = mounts.find((x) => x.process !== process && x.epoch > epoch && x.complete < t);
    return m === undefined ? "a newer mount" : `the mount of epoch ${m.epoch} by ${m.process}, which returned at ${ms(m.complete)}`;
  };
  for (const [block, ops] of blocks) {
    for (const w of ops.writes) {
      const p = w.ev.process;
      const epoch = Math.max(w.ev.mountEpoch, epochs.ownBefore(p, w.settled));
      const fencedAtInvoke = epochs.othersBefore(p, w.invoke) > epoch;
      if (w.ev.outcome === "ok" && fencedAtInvoke) {
        acked++;
        findings.add("fenced-write-acked", block, () => `Write of ${describeValue(w.ev.value)} to block ${block} by ${p} (epoch ${epoch}), issued at ${ms(w.invoke)} after ${fencer(p, epoch, w.invoke)}, was acknowledged at ${ms(w.complete)}`);
      } else if (w.ev.outcome === "ok" && epochs.othersBefore(p, w.complete) > epoch) {
        inFlight++;
      }
      if (w.read && fencedAtInvoke) {
        visible++;
        findings.add("fenced-write-visible", block, () => `Write of ${describeValue(w.ev.value)} to block ${block} by ${p} (epoch ${epoch}), issued at ${ms(w.invoke)} after ${fencer(p, epoch, w.invoke)}, was read back`);
      }
    }
  }
  return { acked, visible, inFlight };
}

function checkDivergence(replicas: readonly ReplicaChecksums[], findings: Findings): number {
  if (replicas.length < 2) return 0;
  const byRegion = new Map<number, Map<string, number>>();
  for (const rep of replicas) {
    for (const { region, checksum } of rep.regions) {
      let m = byRegion.get(region);
      if (m === undefined) {
        m = new Map();
        byRegion.set(region, m);
      }
      m.set(rep.node, checksum >>> 0);
    }
  }
  /** The replicas grouped by checksum ("missing" where one has none), for a finding's message. */
  const groups = (sums: Map<string, number>): string => {
    const g = new Map<string, string[]>();
    for (const rep of replicas) {
      const s = sums.get(rep.node);
      const k = s === undefined ? "missing" : `0x${s.toString(16).padStart(8, "0")}`;
      g.set(k, [...(g.get(k) ?? []), rep.node]);
    }
    return [...g].map(([k, nodes]) => `${nodes.join(", ")} ${k}`).join("; ");
  };
  let divergent = 0;
  for (const region of [...byRegion.keys()].sort((a, b) => a - b)) {
    const sums = byRegion.get(region) as Map<string, number>;
    const distinct = new Set(sums.values());
    if (distinct.size === 1 && sums.size === replicas.length) continue;
    // Block by block where every replica gave its block checksums of this region.
    const perBlock = replicas.map((rep) => rep.blocks?.filter((b) => b.region === region) ?? []);
    if (perBlock.every((bs) => bs.length > 0)) {
      const byBlock = new Map<number, Map<string, number>>();
      for (const [i, bs] of perBlock.entries()) {
        for (const b of bs) {
          let m = byBlock.get(b.block);
          if (m === undefined) {
            m = new Map();
            byBlock.set(b.block, m);
          }
          m.set(replicas[i]?.node ?? "", b.checksum >>> 0);
        }
      }
      let found = 0;
      for (const block of [...byBlock.keys()].sort((a, b) => a - b)) {
        const bs = byBlock.get(block) as Map<string, number>;
        if (new Set(bs.values()).size === 1 && bs.size === replicas.length) continue;
        found++;
        findings.add("divergent", block, () => `Block ${block} (region ${region}) differs between replicas: ${groups(bs)}`);
      }
      if (found > 0) {
        divergent += found;
        continue;
      }
    }
    divergent++;
    findings.add("divergent", undefined, () => `Region ${region} differs between replicas: ${groups(sums)}`);
  }
  return divergent;
}

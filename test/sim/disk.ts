/**
 * A fake disk for one replica: a durable state that survives a crash and a
 * volatile state (page cache) that does not. Log operations become durable
 * in group-commit rounds; block data becomes durable only at a checkpoint.
 * A crash loses every operation of an unfinished round (a torn tail is an
 * incomplete frame, cut at recovery) and may flip bits in a synced record
 * past the checkpoint, which recovery cuts, leaving the replica unsure past
 * its head.
 */
import { assert } from "../../src/core/assert.js";
import { emptyBlockMask, maskCount, maskHas, maskSet } from "../../src/core/block-mask.js";
import type { DurableToken, SuperblockPatch } from "../../src/core/messages.js";
import type { RecoveredReplica } from "../../src/core/replica.js";
import { foldSessions, type ClientSession } from "../../src/core/session.js";
import { configAfter } from "../../src/core/config.js";
import { blockCrc32, regionDigest } from "../../src/storage/crc32.js";
import { asLsn, recordVersion, REGION_DIRTY, VERSION_ZERO, type Epoch, type LogRecord, type Lsn, type Ticks, type Version, type VolumeConfig } from "../../src/core/types.js";

export type DiskOp =
  | { readonly kind: "superblock"; readonly patch: SuperblockPatch; readonly token: DurableToken }
  | { readonly kind: "append"; readonly records: readonly LogRecord[]; readonly token: DurableToken }
  | { readonly kind: "truncate"; readonly afterLsn: Lsn; readonly token: DurableToken }
  | { readonly kind: "reset"; readonly snapshot: Version; readonly sessions: readonly ClientSession[]; readonly consistentThrough: Version; readonly token: DurableToken }
  | { readonly kind: "install"; readonly token: DurableToken }
  | { readonly kind: "markConsistent"; readonly token: DurableToken };

interface LogState {
  base: Version;
  records: LogRecord[];
}

interface DataState {
  appliedLsn: Lsn;
  blocks: Map<number, Uint8Array>;
  /** Blocks whose copy fails its checksum (media corruption): their bytes are never given out. */
  corrupt: Set<number>;
  regionVersions: Version[];
  sessions: ClientSession[];
  /** The configuration as of the applied point (the store folds config records at a checkpoint, as sessions). */
  config: VolumeConfig;
}

interface SuperState {
  promisedEpoch: Epoch;
  commitLsn: Lsn;
  consistent: boolean;
  consistentThrough: Version | null;
  unsurePastHead: boolean;
}

export interface SimDiskOptions {
  readonly blockSize: number;
  readonly blockCount: number;
  readonly regionBlocks: number;
  readonly logRetainedRecordsMax: number;
  readonly config: VolumeConfig;
}

/** The value a corrupt block reads as (never a value any client wrote). */
export const CORRUPT_VALUE = 0xbadbad;

export class SimDisk {
  private dSuper: SuperState;
  private dLog: LogState;
  private dData: DataState;
  private vLog: LogState;
  private vData: DataState;
  private queue: DiskOp[] = [];
  /** Volatile, like the core's: regions installed since the region resync began. */
  private consistent = true;
  private readonly installed = new Set<number>();
  /** Volatile, like the core's: regions made dirty since the region resync began, with the last record applied to each. */
  private readonly dirtyShadow = new Map<number, Version>();
  /**
   * Per block written since the last crash, the lsn of the last record that
   * wrote it; other blocks are bounded by their region's version (as the
   * file store keeps them: in memory only). A region copy sends the blocks
   * above the target's version of the region.
   */
  private readonly blockLsns = new Map<number, Lsn>();
  private round: DiskOp[] | null = null;
  private readonly markedData = new Map<DurableToken, DataState>();
  /** Bit flips recovery found and cut, over the disk's life. */
  corruptionsCut = 0;

  constructor(private readonly opts: SimDiskOptions) {
    const regions = Math.ceil(opts.blockCount / opts.regionBlocks);
    this.dSuper = { promisedEpoch: 0 as Epoch, commitLsn: asLsn(0), consistent: true, consistentThrough: null, unsurePastHead: false };
    this.dLog = { base: VERSION_ZERO, records: [] };
    this.dData = { appliedLsn: asLsn(0), blocks: new Map(), corrupt: new Set(), regionVersions: Array.from({ length: regions }, () => VERSION_ZERO), sessions: [], config: opts.config };
    this.vLog = cloneLog(this.dLog);
    this.vData = cloneData(this.dData);
  }

  // --- Operations, in the order the core gives them. -----------------------

  enqueue(op: DiskOp): void {
    switch (op.kind) {
      case "append":
        for (const r of op.records) {
          assert(r.lsn === headOf(this.vLog).lsn + 1, "disk append in order");
          this.vLog.records.push(r);
        }
        break;
      case "truncate":
        truncate(this.vLog, op.afterLsn);
        // Only a planted bug truncates below the applied point; the applied
        // bytes stay (that is the damage the checker must find).
        if (this.vData.appliedLsn > op.afterLsn) this.vData.appliedLsn = op.afterLsn;
        break;
      case "reset":
        rebase(this.vLog, op.snapshot);
        this.vData.appliedLsn = op.snapshot.lsn;
        this.vData.sessions = [...op.sessions];
        this.consistent = false;
        this.installed.clear();
        this.dirtyShadow.clear();
        break;
      case "superblock":
        if (op.patch.config !== undefined) this.vData.config = op.patch.config;
        break;
      case "install":
        break;
      case "markConsistent":
        // What it makes durable is the data as of now, not as of the round's
        // end (a resync reset queued after it changes the volatile data).
        // Regions still dirty take the version of their last record (as the
        // store does: see its writeSuperblock).
        this.promoteDirty();
        this.markedData.set(op.token, cloneData(this.vData));
        break;
      default:
        throw new Error(`unknown op ${JSON.stringify(op satisfies never)}`);
    }
    this.queue.push(op);
  }

  /** Starts a sync round with everything queued, if none is running. Returns false if there is nothing to do. */
  startRound(): boolean {
    if (this.round !== null || this.queue.length === 0) return false;
    this.round = this.queue;
    this.queue = [];
    return true;
  }

  /** The running round's fdatasync returned: its operations are durable. Returns their tokens, in order. */
  finishRound(): DurableToken[] {
    const round = this.round;
    assert(round !== null, "a round is running");
    this.round = null;
    const tokens: DurableToken[] = [];
    for (const op of round) {
      switch (op.kind) {
        case "superblock":
          if (op.patch.promisedEpoch !== undefined) this.dSuper.promisedEpoch = op.patch.promisedEpoch;
          if (op.patch.commitLsn !== undefined) this.dSuper.commitLsn = op.patch.commitLsn;
          if (op.patch.unsurePastHead !== undefined) this.dSuper.unsurePastHead = op.patch.unsurePastHead;
          if (op.patch.config !== undefined) this.dData.config = op.patch.config;
          break;
        case "append":
          for (const r of op.records) {
            assert(r.lsn === headOf(this.dLog).lsn + 1, "durable append in order");
            this.dLog.records.push(r);
          }
          break;
        case "truncate":
          truncate(this.dLog, op.afterLsn);
          if (this.dData.appliedLsn > op.afterLsn) this.dData.appliedLsn = op.afterLsn;
          break;
        case "reset":
          rebase(this.dLog, op.snapshot);
          this.dData = cloneData(this.vData);
          this.dData.appliedLsn = op.snapshot.lsn;
          this.dData.sessions = [...op.sessions];
          this.dSuper.consistent = false;
          this.dSuper.consistentThrough = op.consistentThrough;
          break;
        case "install":
          break;
        case "markConsistent": {
          const data = this.markedData.get(op.token);
          assert(data !== undefined, "a markConsistent has its data");
          this.markedData.delete(op.token);
          this.checkpointData(data);
          this.dSuper.consistent = true;
          this.dSuper.consistentThrough = null;
          // Unless a reset queued after it made the volatile state inconsistent again.
          if (!round.slice(round.indexOf(op) + 1).some((o) => o.kind === "reset") && !this.queue.some((o) => o.kind === "reset")) {
            this.promoteDirty();
            this.dirtyShadow.clear();
            this.consistent = true;
          }
          break;
        }
        default:
          throw new Error(`unknown op ${JSON.stringify(op satisfies never)}`);
      }
      tokens.push(op.token);
    }
    return tokens;
  }

  hasRound(): boolean {
    return this.round !== null;
  }

  // --- Block data. -----------------------------------------------------------

  /** Applies records through `throughLsn`; returns them (the checker compares what replicas apply). */
  apply(throughLsn: Lsn): LogRecord[] {
    const from = this.vData.appliedLsn + 1;
    const applied: LogRecord[] = [];
    for (let lsn = from; lsn <= throughLsn; lsn++) {
      const r = recordAt(this.vLog, asLsn(lsn));
      assert(r !== undefined, `disk apply of ${lsn}: record is in the log`);
      this.applyRecord(r, 0, Infinity);
      applied.push(r);
    }
    if (throughLsn > this.vData.appliedLsn) {
      this.vData.sessions = foldSessions(this.vData.sessions, sliceLog(this.vLog, asLsn(from), throughLsn), 64);
      this.vData.config = configAfter(this.vData.config, sliceLog(this.vLog, asLsn(from), throughLsn));
      this.vData.appliedLsn = throughLsn;
    }
    return applied;
  }

  private applyRecord(r: LogRecord, firstBlock: number, endBlock: number): void {
    if (r.kind === "mountStart" || r.kind === "config") return;
    const bs = this.opts.blockSize;
    for (let i = 0; i < r.blockCount; i++) {
      const b = r.block + i;
      if (b < firstBlock || b >= endBlock) continue;
      this.vData.corrupt.delete(b);
      this.blockLsns.set(b, r.lsn);
      if (r.kind === "write") {
        assert(r.data !== null);
        this.vData.blocks.set(b, r.data.slice(i * bs, (i + 1) * bs));
      } else {
        this.vData.blocks.delete(b);
      }
      const region = Math.floor(b / this.opts.regionBlocks);
      const real = this.consistent || this.installed.has(region);
      this.vData.regionVersions[region] = real ? recordVersion(r) : REGION_DIRTY;
      if (real) this.dirtyShadow.delete(region);
      else this.dirtyShadow.set(region, recordVersion(r));
    }
  }

  readBlocks(block: number, blockCount: number, overlay: readonly LogRecord[]): Uint8Array {
    const bs = this.opts.blockSize;
    const out = new Uint8Array(blockCount * bs);
    for (let i = 0; i < blockCount; i++) {
      if (this.vData.corrupt.has(block + i)) {
        // What a bad copy would give: bytes of no write (a checker that sees them reports P5).
        const view = new DataView(out.buffer, out.byteOffset + i * bs, bs);
        view.setUint32(0, CORRUPT_VALUE, true);
        view.setUint32(4, (block + i) ^ 0x5a5a, true);
        continue;
      }
      const d = this.vData.blocks.get(block + i);
      if (d !== undefined) out.set(d, i * bs);
    }
    for (const r of overlay) {
      for (let i = 0; i < r.blockCount; i++) {
        const b = r.block + i;
        if (b < block || b >= block + blockCount) continue;
        const at = (b - block) * bs;
        if (r.kind === "write" && r.data !== null) out.set(r.data.subarray(i * bs, (i + 1) * bs), at);
        else out.fill(0, at, at + bs);
      }
    }
    return out;
  }

  private promoteDirty(): void {
    for (const [g, v] of this.dirtyShadow) {
      const now = this.vData.regionVersions[g];
      if (now !== undefined && now.epoch === REGION_DIRTY.epoch && now.lsn === REGION_DIRTY.lsn) this.vData.regionVersions[g] = v;
    }
  }

  /** A region's blocks and version; with `sinceLsn`, only the blocks written after it (`blocks` says which). */
  readRegion(region: number, sinceLsn: Lsn | null = null): { data: Uint8Array; version: Version; copiedAt: Lsn; blocks: Uint8Array | null } {
    const bs = this.opts.blockSize;
    const first = region * this.opts.regionBlocks;
    const count = Math.min(this.opts.regionBlocks, this.opts.blockCount - first);
    const version = this.vData.regionVersions[region];
    assert(version !== undefined);
    const all = this.readBlocks(first, count, []);
    if (sinceLsn === null) return { data: all, version, copiedAt: this.vData.appliedLsn, blocks: null };
    const dirty = version.epoch === REGION_DIRTY.epoch && version.lsn === REGION_DIRTY.lsn;
    const mask = emptyBlockMask(count);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const bound = this.blockLsns.get(first + i) ?? (dirty ? Number.MAX_SAFE_INTEGER : version.lsn);
      if (bound <= sinceLsn) continue;
      maskSet(mask, i);
      parts.push(all.subarray(i * bs, (i + 1) * bs));
    }
    const data = new Uint8Array(parts.length * bs);
    parts.forEach((d, k) => data.set(d, k * bs));
    return { data, version, copiedAt: this.vData.appliedLsn, blocks: mask };
  }

  installRegion(region: number, data: Uint8Array, version: Version, copiedAt: Lsn, mask: Uint8Array | null = null): void {
    const bs = this.opts.blockSize;
    const first = region * this.opts.regionBlocks;
    const end = Math.min(first + this.opts.regionBlocks, this.opts.blockCount);
    assert(copiedAt <= this.vData.appliedLsn, "a region is installed once this replica applied through its copy point");
    assert(data.length === maskCount(mask, end - first) * bs, "a region copy carries the blocks its mask names");
    let k = 0;
    for (let b = first; b < end; b++) {
      this.blockLsns.delete(b);
      // Not carried: not written at the source since this replica's version of the region, so the same here.
      if (mask !== null && !maskHas(mask, b - first)) continue;
      this.vData.corrupt.delete(b);
      const d = data.subarray(k * bs, (k + 1) * bs);
      k++;
      if (d.every((x) => x === 0)) this.vData.blocks.delete(b);
      else this.vData.blocks.set(b, d.slice());
    }
    this.vData.regionVersions[region] = version;
    this.installed.add(region);
    this.dirtyShadow.delete(region);
    for (const r of sliceLog(this.vLog, asLsn(copiedAt + 1), this.vData.appliedLsn)) this.applyRecord(r, first, end);
  }

  /** Makes the applied data durable and trims the durable log, keeping a tail. */
  checkpoint(): void {
    // A checkpoint is ordered after a pending resync reset (which checkpoints itself).
    if ([...this.queue, ...(this.round ?? [])].some((op) => op.kind === "reset")) return;
    this.checkpointData();
    const keepFrom = Math.min(this.dData.appliedLsn, headOf(this.dLog).lsn - this.opts.logRetainedRecordsMax);
    while (this.dLog.records.length > 0 && (this.dLog.records[0] as LogRecord).lsn <= keepFrom) {
      this.dLog.base = recordVersion(this.dLog.records.shift() as LogRecord);
    }
  }

  private checkpointData(from: DataState = this.vData): void {
    // Only what the durable log backs can be checkpointed (apply follows durability).
    assert(from.appliedLsn <= headOf(this.dLog).lsn || this.dLog.base.lsn >= from.appliedLsn, "checkpoint within the durable log");
    this.dData = cloneData(from);
    if (this.dSuper.commitLsn < this.dData.appliedLsn) this.dSuper.commitLsn = this.dData.appliedLsn;
  }

  // --- Crash and recovery. ---------------------------------------------------

  /**
   * Power loss: every unfinished round is lost. With `flip`, a bit flips in
   * a synced record past the checkpoint (chosen by `pick`), and recovery
   * cuts the log there.
   */
  crash(flip: ((n: number) => number) | null): void {
    this.queue = [];
    this.round = null;
    this.markedData.clear();
    if (flip !== null) {
      const candidates = this.dLog.records.filter((r) => r.lsn > this.dData.appliedLsn);
      if (candidates.length > 0) {
        const victim = candidates[flip(candidates.length)] as LogRecord;
        truncate(this.dLog, asLsn(victim.lsn - 1));
        this.dSuper.unsurePastHead = true;
        this.corruptionsCut++;
      }
    }
    this.vLog = cloneLog(this.dLog);
    this.vData = cloneData(this.dData);
    this.consistent = this.dSuper.consistent;
    this.installed.clear();
    this.dirtyShadow.clear();
    this.blockLsns.clear();
  }

  /**
   * A disk that acknowledged writes and lost them: every write to `region`
   * is gone, blocks, checksums and version alike (its blocks read as zeros
   * and verify), durably. Only comparing versions across replicas shows it.
   */
  loseRegion(region: number): void {
    const first = region * this.opts.regionBlocks;
    for (const d of [this.vData, this.dData]) {
      for (let b = first; b < first + this.opts.regionBlocks; b++) {
        d.blocks.delete(b);
        d.corrupt.delete(b);
      }
      d.regionVersions[region] = VERSION_ZERO;
    }
  }

  /** A disk that acknowledged a block's writes and lost them, checksum and all, durably: it reads as zeros and verifies; the region's version stays. */
  loseBlock(block: number): void {
    for (const d of [this.vData, this.dData]) {
      d.blocks.delete(block);
      d.corrupt.delete(block);
    }
  }

  /** The configuration the store hands the core at a start (as of its applied point). */
  durableConfig(): VolumeConfig {
    return this.dData.config;
  }

  recover(now: Ticks): RecoveredReplica {
    assert(this.queue.length === 0 && this.round === null, "recover after a crash");
    return {
      promisedEpoch: this.dSuper.promisedEpoch,
      commitLsn: asLsn(Math.max(this.dSuper.commitLsn, this.dData.appliedLsn)),
      consistent: this.dSuper.consistent,
      consistentThrough: this.dSuper.consistentThrough,
      unsurePastHead: this.dSuper.unsurePastHead,
      sessions: [...this.dData.sessions],
      logBase: this.dLog.base,
      records: [...this.dLog.records],
      appliedLsn: this.dData.appliedLsn,
      regionVersions: [...this.dData.regionVersions],
      now,
    };
  }

  // --- For the checker. ------------------------------------------------------

  appliedLsn(): Lsn {
    return this.vData.appliedLsn;
  }

  /** The blocks of a range whose copy fails its checksum. */
  corruptIn(block: number, blockCount: number): number[] {
    const out: number[] = [];
    for (let b = block; b < block + blockCount; b++) if (this.vData.corrupt.has(b)) out.push(b);
    return out;
  }

  isCorrupt(block: number): boolean {
    return this.vData.corrupt.has(block);
  }

  /** Media corruption of a block's copy on disk (and so in what is read of it). */
  corruptBlock(block: number): void {
    this.vData.corrupt.add(block);
    this.dData.corrupt.add(block);
  }

  blockBytes(block: number): Uint8Array | undefined {
    return this.vData.blocks.get(block);
  }

  regionVersions(): readonly Version[] {
    return this.vData.regionVersions;
  }

  /** As the store's blockChecksums give it (regionDigest): a corrupt copy keeps the checksum of what was written. */
  regionDigest(region: number): number {
    const first = region * this.opts.regionBlocks;
    const count = Math.min(this.opts.regionBlocks, this.opts.blockCount - first);
    const sums = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const d = this.vData.blocks.get(first + i);
      sums[i] = d === undefined || d.every((x) => x === 0) ? 0 : blockCrc32(first + i, d);
    }
    return regionDigest(sums);
  }
}

function headOf(log: LogState): Version {
  const last = log.records[log.records.length - 1];
  return last === undefined ? log.base : recordVersion(last);
}

function recordAt(log: LogState, lsn: Lsn): LogRecord | undefined {
  return log.records[lsn - log.base.lsn - 1];
}

function sliceLog(log: LogState, from: Lsn, to: Lsn): LogRecord[] {
  const a = Math.max(from, log.base.lsn + 1) - log.base.lsn - 1;
  const b = to - log.base.lsn;
  return a < b ? log.records.slice(a, b) : [];
}

/** The start of a region resync: drop records up to the snapshot, keep the tail if the log holds it. */
function rebase(log: LogState, snapshot: Version): void {
  const at = recordAt(log, snapshot.lsn);
  const holds = (snapshot.lsn === log.base.lsn && log.base.epoch === snapshot.epoch) || (at !== undefined && at.epoch === snapshot.epoch);
  if (!holds) {
    log.base = snapshot;
    log.records = [];
    return;
  }
  log.records = log.records.filter((r) => r.lsn > snapshot.lsn);
  log.base = snapshot;
}

function truncate(log: LogState, afterLsn: Lsn): void {
  assert(afterLsn >= log.base.lsn, "truncate at or above the base");
  log.records.length = Math.min(log.records.length, afterLsn - log.base.lsn);
}

function cloneLog(l: LogState): LogState {
  return { base: l.base, records: [...l.records] };
}

function cloneData(d: DataState): DataState {
  return { appliedLsn: d.appliedLsn, blocks: new Map(d.blocks), corrupt: new Set(d.corrupt), regionVersions: [...d.regionVersions], sessions: [...d.sessions], config: d.config };
}

/**
 * One replica of one volume on a VolumeDisk: the ReplicaStore behind both the
 * file store and the in-memory store, so both behave the same by construction.
 *
 * Files of a volume directory:
 *   superblock                 written atomically (superblock-file.ts)
 *   log-<gen>-<firstLsn>.wal   the write-ahead log, in segments
 *   blocks                     block data, sparse, block b at b * blockSize
 *   blockmeta                  per block 8 bytes: u32 CRC-32 of (index, bytes), u32 state (0 zeros, 1 data)
 *   regions                    per region 16 bytes: f64 epoch, f64 lsn of the last record that touched it
 *                              (-1, -1: REGION_DIRTY, applied while inconsistent and not yet copied)
 *
 * Why log segments are opened O_DSYNC (VolumeDisk syncWrites): a group is
 * then made durable by one write call, one thread-pool hop instead of a
 * writev and an fdatasync (two hops, each 50-100 us here); the kernel does
 * the same work as write + fdatasync, so durability is the same. Small
 * groups may even be written on the event loop (see writeGroup).
 *
 * Why a segmented log: trimming it is unlinking whole segment files, with no
 * copying, while appends go on in the newest one; a log rewritten at each
 * checkpoint would copy the retained tail (up to 64 MiB) every time. A reset
 * for resync starts a new generation, so a segment left over by a crash in
 * the middle of the reset can never be mistaken for part of the new log.
 *
 * Why applied records stay in memory until the next checkpoint: the block
 * data and its metadata on disk only ever move from one checkpoint to the
 * next. A checkpoint first raises the durable commit point to what it is
 * about to write (so recovery knows those records are committed and may
 * replay them), writes and syncs the blocks, then the per-block checksums,
 * then the region versions, and last the superblock with the new applied
 * point. Within each step, adjacent blocks (regions) go in one writev and a
 * few writes are in flight at once (CHECKPOINT_WRITES_IN_FLIGHT_MAX), never
 * all of libuv's threads, so the log's writes are not queued behind them.
 * A crash anywhere in between is repaired by replaying the log from
 * the old applied point; a region whose version on disk already covers a
 * record is not written again by it, which is also what keeps a region
 * installed by resync from being overwritten by older records.
 *
 * Why a resync start keeps the log after the snapshot: those records may be
 * writes this replica acknowledged, and a replica never forgets one. The
 * applied point moves back to the snapshot, so they are applied again; that
 * is idempotent, since every record sets whole blocks. While inconsistent, a
 * record applied to a region not copied since the reset leaves the region's
 * content no prefix of the history, so its version becomes REGION_DIRTY,
 * which equals no real version: the next comparison copies it.
 *
 * Order: mutating calls take effect in call order, awaited or not (the
 * driver issues them in the core's action order). They run one at a time
 * through `callOrder`, except appends: an append is accepted (checked
 * against the last accepted record and queued for the log) at once, when no
 * call that an append must not overtake is pending (a log truncation or
 * reset, a superblock write, an append queued behind one of those), and
 * goes through `callOrder` otherwise. Appends do commute with applying,
 * installing and checkpoints, so a long checkpoint never holds them up, and
 * those that queue while an fdatasync runs share the next (group commit).
 * The periodic checkpoint (checkpoint()) holds `callOrder` only to take the
 * overlay and to record the applied point, not while it writes, so applying
 * and installing go on meanwhile too.
 * A call that depends on earlier appends (a superblock write, truncation,
 * reset, or applying records not yet durable) waits until they are durable,
 * so what is durable after a crash is always a prefix of the calls made.
 */
import { AssertionError, assert } from "../core/assert.js";
import { VolumeError } from "../core/errors.js";
import { emptyBlockMask, maskCount, maskFits, maskHas, maskSet } from "../core/block-mask.js";
import { CONFIG_BYTES_MAX, configAfter } from "../core/config.js";
import { limits } from "../core/limits.js";
import { foldSessions, type ClientSession } from "../core/session.js";
import {
  REGION_DIRTY,
  VERSION_ZERO,
  asEpoch,
  asLsn,
  compareVersion,
  coversBlocks,
  formatVersion,
  recordVersion,
  versionEquals,
  type Epoch,
  type LogRecord,
  type Lsn,
  type Version,
  type VolumeConfig,
} from "../core/types.js";
import { blockCrc32, regionDigest } from "./crc32.js";
import {
  CLIENT_ID_BYTES_MAX,
  FrameArena,
  clientIdBytes,
  decodeFrame,
  encodeFrames,
  frameBytesAt,
  frameBytesMax,
  frameEpoch,
  frameLsn,
  heldRecord,
  hex,
  type EncodedFrames,
} from "./log-frame.js";
import { CorruptBlocksError, type ReplicaStore, type ReplicaStoreStats, type Superblock, type SuperblockPatch } from "./replica-store.js";
import { readBuffers } from "./read-buffers.js";
import { SUPERBLOCK_FILE, readSuperblockFile, writeSuperblockFile, type PersistedState } from "./superblock-file.js";
import { readFully, withFaultHooks, type DiskFaultHooksForTests, type DiskFile, type VolumeDisk } from "./volume-disk.js";

export interface ReplicaStoreOptions {
  /** Create the volume with this configuration; fails if it already exists. */
  readonly create?: VolumeConfig;
  /** Blocks per region (fixed when the volume is created). Default limits.regionBlocks. */
  readonly regionBlocks?: number;
  /**
   * Applied log bytes kept for catch-up of peers after a checkpoint, whole
   * segments at a time. Default limits.logRetainedBytesMax plus one
   * segment: trimming drops every segment that takes the kept bytes past
   * the bound, and a closed segment holds at least logSegmentBytes, so this
   * keeps at least the core's retained log on disk (a restarted node serves
   * it again).
   */
  readonly logRetainedBytesMax?: number;
  /** A new log segment is started past this size. Default limits.logSegmentBytes. */
  readonly logSegmentBytes?: number;
  /** Log bytes past the applied point also held in memory. Default limits.logUnappliedHeldBytesMax. */
  readonly logUnappliedHeldBytesMax?: number;
  /** TEST HOOK: fails writes or syncs as a failing disk would. */
  readonly faults?: DiskFaultHooksForTests;
}

const BLOCKS_FILE = "blocks";
const BLOCK_META_FILE = "blockmeta";
const REGIONS_FILE = "regions";
const BLOCK_META_BYTES = 8;
const REGION_VERSION_BYTES = 16;
const SEGMENT_NAME = /^log-(\d{8})-(\d{16})\.wal$/;
const VOLUME_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const BLOCK_SIZE_MIN = 512;
const BLOCK_SIZE_MAX = 64 * 1024;
/** Blocks written by one writev of a checkpoint. */
const CHECKPOINT_RUN_BLOCKS_MAX = 256;
/** Block bytes a checkpoint writes between two syncs of the block data. */
const CHECKPOINT_SYNC_BYTES = 4 * 1024 * 1024;
/** Blocks a checkpoint checksums in one turn of the event loop. */
const CHECKPOINT_BLOCKS_PER_TURN = 256;
/** Largest log group written synchronously on the event loop (see writeGroup). */
const LOG_SYNC_WRITE_BYTES_MAX = 16 * 1024;

/**
 * Writes of a checkpoint in flight at once. Fewer than libuv's thread pool
 * (4 threads unless UV_THREADPOOL_SIZE says otherwise), so that a log write
 * or a read issued meanwhile finds a free thread instead of queueing behind
 * the checkpoint: appends commute with checkpoints, and must not wait on one.
 */
const CHECKPOINT_WRITES_IN_FLIGHT_MAX = Math.min(8, Math.max(1, threadPoolSize() - 2));

function threadPoolSize(): number {
  const n = Number(process.env["UV_THREADPOOL_SIZE"] ?? 4);
  return Number.isSafeInteger(n) && n >= 1 ? n : 4;
}

/** Runs write(0) .. write(count - 1) (or reads), CHECKPOINT_WRITES_IN_FLIGHT_MAX at a time; rejects with the first failure once none is in flight. */
async function writeInParallel(count: number, write: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { readonly err: unknown } | null = null;
  const lane = async (): Promise<void> => {
    while (failure === null && next < count) {
      const i = next++;
      try {
        await write(i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(count, CHECKPOINT_WRITES_IN_FLIGHT_MAX) }, lane));
  if (failure !== null) throw (failure as { readonly err: unknown }).err;
}

/** Stores of this process whose log queue has work (flushLog scheduled or running); see writeGroup. */
let storesFlushingLog = 0;

export function checkVolumeName(name: string): void {
  if (name.length === 0 || name.length > limits.volumeNameLengthMax || !VOLUME_NAME.test(name)) {
    throw new VolumeError(
      "INVALID_ARGUMENT",
      `Invalid volume name ${JSON.stringify(name)}: use 1 to ${limits.volumeNameLengthMax} characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
    );
  }
}

export function checkVolumeConfig(config: VolumeConfig): void {
  checkVolumeName(config.name);
  const bad = (detail: string): never => {
    throw new VolumeError("INVALID_ARGUMENT", `Invalid configuration of volume ${config.name}: ${detail}`);
  };
  const bs = config.blockSize;
  if (!Number.isInteger(bs) || bs < BLOCK_SIZE_MIN || bs > BLOCK_SIZE_MAX || (bs & (bs - 1)) !== 0) {
    bad(`block size ${bs} is not a power of two from ${BLOCK_SIZE_MIN} to ${BLOCK_SIZE_MAX}`);
  }
  if (!Number.isInteger(config.blockCount) || config.blockCount < 1 || config.blockCount > limits.volumeBlockCountMax) {
    bad(`block count ${config.blockCount} is not from 1 to ${limits.volumeBlockCountMax}`);
  }
  if (config.replicas.length < 1 || config.replicas.length > limits.replicaCountMax) {
    bad(`${config.replicas.length} replicas, expected 1 to ${limits.replicaCountMax}`);
  }
  if (new Set(config.replicas).size !== config.replicas.length) bad("replicas are not distinct nodes");
  const previous = config.previousReplicas ?? [];
  if (previous.length > limits.replicaCountMax || new Set(previous).size !== previous.length) bad("previous replicas are not distinct nodes");
  if (config.replacement !== undefined && config.previousReplicas !== undefined) bad("a learner while joint");
  if (!Number.isSafeInteger(config.configVersion) || config.configVersion < 0) bad(`config version ${config.configVersion}`);
}

/** Serializes async sections; each runs after the previous one settled. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(section: () => Promise<T>): Promise<T> {
    const result = this.tail.then(section);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

interface Segment {
  readonly name: string;
  readonly firstLsn: number;
  readonly file: DiskFile;
  /** Bytes of whole, durable frames. */
  bytes: number;
  /** firstLsn - 1 while empty. */
  lastLsn: number;
}

/** One record of the log, as LogEntries.get() reads it out (a copy: change it through LogEntries). */
interface LogEntry {
  readonly epoch: Epoch;
  readonly lsn: Lsn;
  readonly segment: Segment;
  readonly offset: number;
  readonly frameBytes: number;
  /**
   * The record's frame, kept in memory while the record is not in the block
   * data on disk (lsn > durable applied point): bytes heldAt .. heldAt +
   * frameBytes of `held` (see heldRecord). Null once checkpointed.
   */
  readonly held: Buffer | null;
  readonly heldAt: number;
}

/** What a checkpoint writes, taken at one applied point (see DiskReplicaStore.freeze). */
interface FrozenCheckpoint {
  readonly target: Version;
  readonly overlay: Map<number, Uint8Array | null>;
  /** The regions changed since the last checkpoint, each with its version when taken: the one written. */
  readonly regions: readonly { readonly region: number; readonly epoch: number; readonly lsn: number }[];
}

/**
 * The retained log's records, one LogEntry each, kept column by column in
 * arrays of numbers and of references: no object per record, which the
 * garbage collector would otherwise promote out of the young generation and
 * then trace at every full collection for as long as the record is retained
 * (hundreds of thousands of them under a busy log, as in a benchmark that
 * never checkpoints). In CPU profiles of bench/storage-profile.ts, 32
 * writers (single runs, shared disk), the main thread's time in GC fell
 * from 11% to 5-8%; what was left came from the held frames' memory itself
 * (it grew by 250 MB/s there, and V8 collects every few tens of MB of new
 * ArrayBuffer memory), until the log stopped holding records that far past
 * its applied point (writeGroup): then 2%.
 */
class LogEntries {
  private epochs: number[] = [];
  private lsns: number[] = [];
  private segments: Segment[] = [];
  private offsets: number[] = [];
  private frameBytes: number[] = [];
  private helds: (Buffer | null)[] = [];
  private heldAts: number[] = [];

  get length(): number {
    return this.lsns.length;
  }

  push(epoch: number, lsn: number, segment: Segment, offset: number, frameBytes: number, held: Buffer | null, heldAt: number): void {
    this.epochs.push(epoch);
    this.lsns.push(lsn);
    this.segments.push(segment);
    this.offsets.push(offset);
    this.frameBytes.push(frameBytes);
    this.helds.push(held);
    this.heldAts.push(heldAt);
  }

  /** The epoch of entry i (which exists). */
  epochAt(i: number): number {
    return this.epochs[i] as number;
  }

  get(i: number): LogEntry | undefined {
    const segment = this.segments[i];
    if (segment === undefined || i < 0) return undefined;
    return {
      epoch: asEpoch(this.epochs[i] as number),
      lsn: asLsn(this.lsns[i] as number),
      segment,
      offset: this.offsets[i] as number,
      frameBytes: this.frameBytes[i] as number,
      held: this.helds[i] ?? null,
      heldAt: this.heldAts[i] as number,
    };
  }

  setHeld(i: number, held: Buffer | null, heldAt: number): void {
    assert(i >= 0 && i < this.lsns.length, "a held entry exists");
    this.helds[i] = held;
    this.heldAts[i] = heldAt;
  }

  /** Drops the first n entries. */
  dropFirst(n: number): void {
    for (const column of [this.epochs, this.lsns, this.segments, this.offsets, this.frameBytes, this.helds, this.heldAts]) column.splice(0, n);
  }

  /** Keeps the first n entries. */
  truncate(n: number): void {
    for (const column of [this.epochs, this.lsns, this.segments, this.offsets, this.frameBytes, this.helds, this.heldAts]) column.length = Math.min(column.length, n);
  }
}

/**
 * Appends accepted one after another (nothing queued between them), up to
 * limits.logGroupBytesMax: written and made durable by one (O_DSYNC)
 * write, and resolved through one promise that every append in it
 * returned. The group is open to more appends until flushLog takes it.
 */
interface AppendGroup {
  readonly kind: "append";
  /** Contiguous byte ranges to write, in order: buffers[i] from starts[i] to ends[i] (usually one, in one arena slab). */
  readonly buffers: Buffer[];
  readonly starts: number[];
  readonly ends: number[];
  bytes: number;
  /** Records in the group (their frames, in lsn order, fill the byte ranges). */
  records: number;
  readonly durable: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type LogOp = AppendGroup | { readonly kind: "control"; readonly run: () => Promise<void>; readonly resolve: () => void; readonly reject: (err: unknown) => void };

function newAppendGroup(): AppendGroup {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const durable = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { kind: "append", buffers: [], starts: [], ends: [], bytes: 0, records: 0, durable, resolve, reject };
}

interface StoreFiles {
  readonly blocks: DiskFile;
  readonly blockMeta: DiskFile;
  readonly regions: DiskFile;
}

export class DiskReplicaStore implements ReplicaStore {
  private readonly blockSize: number;
  private readonly blockCount: number;
  private readonly regionCount: number;
  private readonly zeroBlock: Buffer;

  private failure: VolumeError | null = null;
  private closed = false;
  /** Why recovery cut the log at open, if it did (for the daemon's log and for tests). */
  private cutReason: string | null = null;

  // Log.
  private segments: Segment[] = [];
  private activeSegment: Segment | null = null;
  /** entries[i].lsn === logBase.lsn + 1 + i. */
  private entries = new LogEntries();
  private retainedBase: Version;
  private durableHead: Version;
  /** The last record accepted by appendLog (durable or queued). */
  private acceptedTail: Version;
  private readonly logQueue: LogOp[] = [];
  /** The next log segment, created ahead of need (see prepareSegment); its file is ready when `file` resolves. */
  private nextSegment: { readonly name: string; readonly file: Promise<DiskFile> } | null = null;
  /** Creations and removals of prepared segments, one after another: a removal never overtakes a creation of the same name. */
  private segmentPrep: Promise<unknown> = Promise.resolve();
  private readonly frameArena = new FrameArena();
  private flushing = false;

  // Applied state.
  private applied: Version;
  /** Applied blocks not yet in the block data on disk; null reads as zeros. */
  private overlay = new Map<number, Uint8Array | null>();
  /**
   * The overlay a background checkpoint is writing (see checkpoint()): read
   * after the overlay and before the disk until its blocks are on disk.
   */
  private frozenOverlay: Map<number, Uint8Array | null> | null = null;
  /** A background checkpoint's write while it runs; it settles (never rejects) when the write is over. */
  private frozenWrite: Promise<void> | null = null;
  /** Moves on at every checkpoint: a background checkpoint records its applied point only if no other came in between. */
  private checkpointGeneration = 0;
  /** Region versions including the overlay; [epoch, lsn] per region. */
  private readonly regionVersionPairs: Float64Array;
  /** Regions whose version or blocks changed since the last checkpoint. */
  private readonly regionsChanged = new Set<number>();
  /** Regions installed since the last resetLogForResync (or open): their versions are real while inconsistent. */
  private readonly regionsInstalled = new Set<number>();
  /** Regions made REGION_DIRTY since the last resetLogForResync, with the version of the last record applied to each (see writeSuperblock). */
  private readonly dirtyShadow = new Map<number, Version>();
  /**
   * Per block of the regions written since this store opened, an upper bound
   * on the lsn of the last record that wrote it (other blocks: their region's
   * version, which bounds every block of the region; REGION_DIRTY bounds
   * nothing, so its blocks count as written at any lsn). A region resync
   * sends only the blocks above the target's version of the region. Kept in
   * memory only: after a restart the bound of every block is its region's
   * version again, which makes a resync copy whole regions, never too little.
   * At most limits.blockLsnRegionsMax regions (the oldest made goes first);
   * a region dropped leaves its highest bound in `blockLsnsDropped`, which
   * then bounds each of its blocks (a region's version may lag what was
   * applied to it for a while, e.g. after dirty regions are promoted).
   */
  private readonly blockLsns = new Map<number, Float64Array>();
  private readonly blockLsnsDropped: Float64Array;

  // Block metadata on disk, cached per region (LRU by Map order).
  private readonly metaCache = new Map<number, Buffer>();
  private metaGeneration = 0;
  private metaWriting: Promise<void> | null = null;
  private readonly readsInFlight = new Set<Promise<unknown>>();

  /** Every mutating call, in call order (see the module comment for appends). */
  private readonly callOrder = new Mutex();
  /** Calls queued in callOrder that an append must not overtake; an append goes through callOrder while this is > 0. */
  private appendBarriers = 0;
  private readonly superblockLock = new Mutex();

  private logSyncs = 0;
  private logRecordsAppended = 0;
  private logRecordsReadBack = 0;
  private blocksRead = 0;
  private checksumMismatches = 0;

  private constructor(
    private readonly disk: VolumeDisk,
    private readonly files: StoreFiles,
    private persisted: PersistedState,
    private readonly regionBlocks: number,
    private readonly logRetainedBytesMax: number,
    private readonly logSegmentBytes: number,
    private readonly logUnappliedHeldBytesMax: number,
    private readonly onClose: () => Promise<void>,
  ) {
    const config = persisted.superblock.config;
    this.blockSize = config.blockSize;
    this.blockCount = config.blockCount;
    this.regionCount = Math.ceil(config.blockCount / regionBlocks);
    this.zeroBlock = Buffer.alloc(config.blockSize);
    this.regionVersionPairs = new Float64Array(this.regionCount * 2);
    this.blockLsnsDropped = new Float64Array(this.regionCount);
    this.retainedBase = persisted.logBase;
    this.durableHead = persisted.logBase;
    this.acceptedTail = persisted.logBase;
    this.applied = persisted.appliedVersion;
  }

  private get volumeName(): string {
    return this.persisted.superblock.config.name;
  }

  /**
   * Opens (or creates) the replica on `rawDisk`, recovering after a crash:
   * the log is scanned from the last checkpoint, a torn or corrupt record is
   * cut with everything after it (and unsurePastHead set durably), and the
   * records known committed are applied again.
   */
  static async open(rawDisk: VolumeDisk, volumeName: string, opts: ReplicaStoreOptions, onClose: () => Promise<void>): Promise<DiskReplicaStore> {
    checkVolumeName(volumeName);
    const disk = withFaultHooks(rawDisk, opts.faults);
    let persisted = await readSuperblockFile(disk, volumeName);
    if (opts.regionBlocks !== undefined && (!Number.isInteger(opts.regionBlocks) || opts.regionBlocks < 1 || opts.regionBlocks > limits.requestBlocksMax)) {
      throw new VolumeError("INVALID_ARGUMENT", `Invalid region size ${opts.regionBlocks} blocks: expected 1 to ${limits.requestBlocksMax}`);
    }
    if (persisted === null) {
      if (opts.create === undefined) throw new VolumeError("NOT_FOUND", `Volume ${volumeName} does not exist on this node`);
      checkVolumeConfig(opts.create);
      if (opts.create.name !== volumeName) {
        throw new VolumeError("INVALID_ARGUMENT", `Cannot create volume ${volumeName} with the configuration of volume ${opts.create.name}`);
      }
      persisted = {
        superblock: { config: opts.create, promisedEpoch: asEpoch(0), commitLsn: asLsn(0), consistent: true, consistentThrough: null, unsurePastHead: false, sessions: [] },
        appliedVersion: VERSION_ZERO,
        logBase: VERSION_ZERO,
        logGeneration: 1,
        regionBlocks: opts.regionBlocks ?? limits.regionBlocks,
      };
      // Leftovers of a creation that crashed before its superblock was written.
      for (const name of await disk.list()) if (name !== SUPERBLOCK_FILE) await disk.unlink(name);
      await writeSuperblockFile(disk, persisted);
    } else {
      if (opts.create !== undefined) throw new VolumeError("INVALID_ARGUMENT", `Cannot create volume ${volumeName}: it already exists`);
      if (persisted.superblock.config.name !== volumeName) {
        throw new VolumeError("CORRUPT", `Superblock of volume ${volumeName} names volume ${persisted.superblock.config.name}`);
      }
      try {
        checkVolumeConfig(persisted.superblock.config);
      } catch (err) {
        throw new VolumeError("CORRUPT", `Superblock of volume ${volumeName} holds a bad configuration: ${(err as Error).message}`);
      }
      if (persisted.regionBlocks < 1 || persisted.regionBlocks > limits.requestBlocksMax) {
        throw new VolumeError("CORRUPT", `Superblock of volume ${volumeName} holds a bad region size ${persisted.regionBlocks}`);
      }
      if (opts.regionBlocks !== undefined && opts.regionBlocks !== persisted.regionBlocks) {
        throw new VolumeError(
          "INVALID_ARGUMENT",
          `Volume ${volumeName} was created with regions of ${persisted.regionBlocks} blocks, not ${opts.regionBlocks}`,
        );
      }
    }
    const logSegmentBytes = opts.logSegmentBytes ?? limits.logSegmentBytes;
    const logRetainedBytesMax = opts.logRetainedBytesMax ?? limits.logRetainedBytesMax + logSegmentBytes;
    const logUnappliedHeldBytesMax = opts.logUnappliedHeldBytesMax ?? limits.logUnappliedHeldBytesMax;
    assert(logSegmentBytes >= 1 && logRetainedBytesMax >= 0 && logUnappliedHeldBytesMax >= 0, "log sizes are positive");
    const open = async (name: string): Promise<DiskFile> => {
      const file = await disk.open(name, true);
      assert(file !== null, `created ${name}`);
      return file;
    };
    const files: StoreFiles = { blocks: await open(BLOCKS_FILE), blockMeta: await open(BLOCK_META_FILE), regions: await open(REGIONS_FILE) };
    const store = new DiskReplicaStore(disk, files, persisted, persisted.regionBlocks, logRetainedBytesMax, logSegmentBytes, logUnappliedHeldBytesMax, onClose);
    try {
      await store.recover();
    } catch (err) {
      await store.closeFiles();
      throw err;
    }
    return store;
  }

  // ---------------------------------------------------------------- recovery

  private async recover(): Promise<void> {
    await this.loadRegionVersions();
    const gen = this.persisted.logGeneration;
    const found: { name: string; firstLsn: number }[] = [];
    for (const name of await this.disk.list()) {
      if (name === "superblock.tmp") {
        await this.disk.unlink(name);
        continue;
      }
      const m = SEGMENT_NAME.exec(name);
      if (m === null) continue;
      if (Number(m[1]) !== gen) await this.disk.unlink(name);
      else found.push({ name, firstLsn: Number(m[2]) });
    }
    found.sort((a, b) => a.firstLsn - b.firstLsn);

    let expectedLsn = this.retainedBase.lsn + 1;
    let prev = this.retainedBase;
    let cut: { segment: Segment; offset: number; reason: string } | null = null;
    const scanned: Segment[] = [];
    const withRecords = new Set<Segment>();
    for (const f of found) {
      if (cut !== null) break;
      const file = await this.disk.open(f.name, false, true);
      assert(file !== null, `segment ${f.name} exists`);
      const segment: Segment = { name: f.name, firstLsn: f.firstLsn, file, bytes: 0, lastLsn: f.firstLsn - 1 };
      scanned.push(segment);
      const bytes = Buffer.alloc(await file.size());
      await readFully(file, bytes, 0);
      let offset = 0;
      while (offset < bytes.length) {
        const d = decodeFrame(bytes, offset, this.blockSize);
        if (!d.ok) {
          cut = { segment, offset, reason: `${d.reason} record at byte ${offset} of ${f.name}: ${d.detail}` };
          break;
        }
        const r = d.record;
        if (this.entries.length === 0 && r.lsn <= this.retainedBase.lsn) {
          // Trimmed by a checkpoint whose unlink of this segment did not survive a crash.
          offset += d.frameBytes;
          continue;
        }
        const problem =
          r.lsn !== expectedLsn ? `lsn ${r.lsn} where ${expectedLsn} was expected`
          : compareVersion(recordVersion(r), prev) <= 0 ? `version ${formatVersion(recordVersion(r))} does not follow ${formatVersion(prev)}`
          : this.recordProblem(r);
        if (problem !== null) {
          cut = { segment, offset, reason: `bad record at byte ${offset} of ${f.name}: ${problem}` };
          break;
        }
        this.entries.push(r.epoch, r.lsn, segment, offset, d.frameBytes, r.lsn > this.applied.lsn ? bytes : null, offset);
        withRecords.add(segment);
        segment.bytes = offset + d.frameBytes;
        segment.lastLsn = r.lsn;
        prev = recordVersion(r);
        expectedLsn++;
        offset += d.frameBytes;
      }
    }
    // Segments after a cut, and segments holding no record of this log, go.
    const dropped = found.slice(scanned.length).map((f) => f.name);
    this.segments = [];
    for (const s of scanned) {
      if (withRecords.has(s) || s === cut?.segment) {
        this.segments.push(s);
      } else {
        await s.file.close();
        dropped.push(s.name);
      }
    }
    for (const name of dropped) await this.disk.unlink(name);
    if (dropped.length > 0) await this.disk.syncDir();
    let unsure = false;
    if (cut !== null) {
      await cut.segment.file.truncate(cut.offset);
      await cut.segment.file.datasync();
      cut.segment.bytes = cut.offset;
      this.cutReason = cut.reason;
      unsure = true;
    }
    this.durableHead = prev;
    this.activeSegment = this.segments[this.segments.length - 1] ?? null;

    if (this.durableHead.lsn < this.applied.lsn) {
      // The log lost records that the block data already holds: start a new log at the applied point.
      await this.startNewLog(this.applied);
      unsure = true;
    }
    this.acceptedTail = this.durableHead;
    if (unsure && !this.persisted.superblock.unsurePastHead) {
      await this.persist((s) => ({ ...s, superblock: { ...s.superblock, unsurePastHead: true } }));
    }
    const replayTo = Math.min(this.persisted.superblock.commitLsn, this.durableHead.lsn);
    if (replayTo > this.applied.lsn) this.applyRecordsThrough(replayTo);
    // The first group appended need not wait for its segment to be created.
    if (this.activeSegment === null || this.activeSegment.bytes >= this.logSegmentBytes) this.prepareSegment(this.durableHead.lsn + 1);
  }

  /** Drops every segment and starts a new log generation whose `prev` is `base`. Durable when it returns. */
  private async startNewLog(base: Version): Promise<void> {
    const generation = this.persisted.logGeneration + 1;
    await this.persist((s) => ({ ...s, logGeneration: generation, logBase: base }));
    for (const s of this.segments) {
      await s.file.close();
      await this.disk.unlink(s.name);
    }
    await this.disk.syncDir();
    this.segments = [];
    this.activeSegment = null;
    this.entries = new LogEntries();
    this.retainedBase = base;
    this.durableHead = base;
  }

  private async loadRegionVersions(): Promise<void> {
    const bytes = Buffer.alloc(this.regionCount * REGION_VERSION_BYTES);
    await readFully(this.files.regions, bytes, 0);
    for (let g = 0; g < this.regionCount; g++) {
      const epoch = bytes.readDoubleLE(g * REGION_VERSION_BYTES);
      const lsn = bytes.readDoubleLE(g * REGION_VERSION_BYTES + 8);
      const dirty = epoch === REGION_DIRTY.epoch && lsn === REGION_DIRTY.lsn;
      if (!dirty && (!Number.isSafeInteger(epoch) || !Number.isSafeInteger(lsn) || epoch < 0 || lsn < 0)) {
        throw new VolumeError("CORRUPT", `Region versions of volume ${this.volumeName} cannot be trusted: region ${g} holds ${epoch}:${lsn}`);
      }
      this.regionVersionPairs[g * 2] = epoch;
      this.regionVersionPairs[g * 2 + 1] = lsn;
    }
  }

  // ------------------------------------------------------------ superblock

  superblock(): Superblock {
    return this.persisted.superblock;
  }

  async writeSuperblock(patch: SuperblockPatch): Promise<void> {
    this.checkUsable();
    await this.runBarrier(() =>
      this.guard(async () => {
        // Takes effect after the appends called before it: what is durable stays a prefix of the calls.
        await this.drainLog();
        const current = this.persisted.superblock;
        if (patch.config !== undefined) {
          checkVolumeConfig(patch.config);
          if (patch.config.name !== current.config.name || patch.config.blockSize !== current.config.blockSize || patch.config.blockCount !== current.config.blockCount) {
            throw new VolumeError("INVALID_ARGUMENT", `Cannot change the name, block size or block count of volume ${current.config.name}`);
          }
        }
        if (patch.promisedEpoch !== undefined) {
          assert(patch.promisedEpoch >= current.promisedEpoch, `promised epoch goes back from ${current.promisedEpoch} to ${patch.promisedEpoch}`);
        }
        if (patch.sessions !== undefined) assert(patch.sessions.length <= limits.clientSessionsMax, "sessions are bounded");
        if (patch.consistent === true && !current.consistent) {
          // A region still dirty was not copied by the resync, whose versions
          // matched, and took every record since: the last one applied to it
          // is its version (as the core does in onResyncDone).
          for (const [g, v] of this.dirtyShadow) {
            if (!versionEquals(this.regionVersion(g), REGION_DIRTY)) continue;
            this.regionVersionPairs[g * 2] = v.epoch;
            this.regionVersionPairs[g * 2 + 1] = v.lsn;
            this.regionsChanged.add(g);
          }
          this.dirtyShadow.clear();
          // A replica that says it is consistent again must hold every region it installed durably.
          await this.checkpointLocked(false);
        }
        await this.persist((s) => ({
          ...s,
          superblock: {
            ...s.superblock,
            ...patch,
            commitLsn: asLsn(Math.max(s.superblock.commitLsn, patch.commitLsn ?? 0)),
            consistentThrough: patch.consistent === true ? null : s.superblock.consistentThrough,
          },
        }));
      }),
    );
  }

  /** Runs a call that appends must not overtake: appends called meanwhile queue in callOrder behind it. */
  private runBarrier<T>(section: () => Promise<T>): Promise<T> {
    this.appendBarriers++;
    return this.callOrder.run(async () => {
      try {
        this.checkUsable();
        return await section();
      } finally {
        this.appendBarriers--;
      }
    });
  }

  /** Writes the superblock; serialized so that concurrent updates never lose one another. */
  private persist(update: (s: PersistedState) => PersistedState): Promise<void> {
    return this.superblockLock.run(async () => {
      const next = update(this.persisted);
      await writeSuperblockFile(this.disk, next);
      this.persisted = next;
    });
  }

  // ------------------------------------------------------------------- log

  head(): Version {
    return this.durableHead;
  }

  logBase(): Version {
    return this.retainedBase;
  }

  logStartLsn(): Lsn {
    return asLsn(this.retainedBase.lsn + 1);
  }

  versionAt(lsn: Lsn): Version | null {
    if (lsn === this.retainedBase.lsn) return this.retainedBase;
    if (lsn === this.applied.lsn) return this.applied;
    const i = lsn - this.retainedBase.lsn - 1;
    if (Number.isInteger(i) && i >= 0 && i < this.entries.length && lsn <= this.durableHead.lsn) return { epoch: asEpoch(this.entries.epochAt(i)), lsn };
    return null;
  }

  private recordProblem(r: LogRecord): string | null {
    const dataBytes = r.data?.length ?? 0;
    if (!Number.isSafeInteger(r.epoch) || r.epoch < 0 || !Number.isSafeInteger(r.lsn) || r.lsn < 1) return "epoch or lsn is not a valid number";
    if (!Number.isSafeInteger(r.clientSeq) || r.clientSeq < 0) return `client sequence ${r.clientSeq} is not a non-negative integer`;
    if (clientIdBytes(r.clientId).length > CLIENT_ID_BYTES_MAX) return `client id is longer than ${CLIENT_ID_BYTES_MAX} bytes`;
    switch (r.kind) {
      case "mountStart":
        return r.blockCount === 0 && r.data === null ? null : "a mount start record covers no blocks";
      case "config":
        return r.blockCount === 0 && r.data !== null && r.data.length > 0 && r.data.length <= CONFIG_BYTES_MAX ? null : "a config record covers no blocks and carries a configuration";
      case "write":
      case "zeroes":
      case "trim":
        if (!Number.isInteger(r.block) || !Number.isInteger(r.blockCount) || r.block < 0 || r.blockCount < 1 || r.blockCount > limits.requestBlocksMax) {
          return `blocks ${r.block}+${r.blockCount} are not 1 to ${limits.requestBlocksMax} blocks`;
        }
        if (r.block + r.blockCount > this.blockCount) return `blocks ${r.block}+${r.blockCount} end past the volume's ${this.blockCount} blocks`;
        if (r.kind === "write" ? dataBytes !== r.blockCount * this.blockSize : r.data !== null) {
          return `${dataBytes} data bytes for a ${r.kind} of ${r.blockCount} blocks`;
        }
        return null;
    }
  }

  appendLog(records: readonly LogRecord[]): Promise<void> {
    // Not async: it returns the group's promise itself, one microtask hop closer to the caller.
    try {
      this.checkUsable();
      if (records.length === 0) return Promise.resolve();
      for (const r of records) {
        const problem = this.recordProblem(r);
        if (problem !== null) throw this.appendRefused(r, problem);
      }
      // Copied now: the caller may reuse its buffers as soon as this returns, even if the append waits its turn.
      const frames = encodeFrames(records, this.frameArena);
      if (this.appendBarriers === 0) return this.acceptAppend(frames);
      return this.runBarrier(() => Promise.resolve({ durable: this.acceptAppend(frames) })).then((accepted) => accepted.durable);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Checks that the records follow the last accepted one and adds them to the
   * open append group at the end of the log queue (or a new one); the promise
   * (the group's) resolves when they are durable.
   */
  private acceptAppend(frames: EncodedFrames): Promise<void> {
    this.checkUsable();
    let prevEpoch = this.acceptedTail.epoch;
    let prevLsn = this.acceptedTail.lsn;
    let records = 0;
    for (let at = frames.start; at < frames.end; at += frameBytesAt(frames.buffer, at)) {
      const epoch = asEpoch(frameEpoch(frames.buffer, at));
      const lsn = asLsn(frameLsn(frames.buffer, at));
      const problem =
        lsn !== prevLsn + 1 ? `it does not follow the log's last record ${formatVersion({ epoch: prevEpoch, lsn: prevLsn })}`
        : epoch < prevEpoch ? `its epoch is older than the log's last record ${formatVersion({ epoch: prevEpoch, lsn: prevLsn })}`
        : null;
      if (problem !== null) throw this.appendRefused({ epoch, lsn }, problem);
      prevEpoch = epoch;
      prevLsn = lsn;
      records++;
    }
    this.acceptedTail = { epoch: prevEpoch, lsn: prevLsn };
    const bytes = frames.end - frames.start;
    const queue = this.logQueue;
    let group = queue[queue.length - 1];
    if (group?.kind !== "append" || group.bytes + bytes > limits.logGroupBytesMax) {
      group = newAppendGroup();
      queue.push(group);
    }
    const n = group.buffers.length - 1;
    if (n >= 0 && group.buffers[n] === frames.buffer && group.ends[n] === frames.start) {
      group.ends[n] = frames.end;
    } else {
      group.buffers.push(frames.buffer);
      group.starts.push(frames.start);
      group.ends.push(frames.end);
    }
    group.bytes += bytes;
    group.records += records;
    this.kickLog();
    return group.durable;
  }

  private appendRefused(r: Version, problem: string): VolumeError {
    return new VolumeError("INVALID_ARGUMENT", `Cannot append record ${formatVersion({ epoch: r.epoch, lsn: r.lsn })} to volume ${this.volumeName}: ${problem}`);
  }

  private kickLog(): void {
    if (this.flushing) return;
    this.flushing = true;
    storesFlushingLog++;
    // Start on the next turn of the event loop, not now: the writers whose
    // appends just completed append again in this turn's microtasks, and
    // they all belong in the next group rather than one alone in it.
    setImmediate(() => void this.flushLog());
  }

  /**
   * The group commit: every append queued while one write+fdatasync runs goes
   * into the next one. Control operations (truncate, reset, trim) run alone,
   * in queue order, so they see a log with no write in flight.
   */
  private async flushLog(): Promise<void> {
    try {
      while (this.logQueue.length > 0 && this.failure === null) {
        const first = this.logQueue[0];
        assert(first !== undefined);
        if (first.kind === "control") {
          this.logQueue.shift();
          try {
            await first.run();
            first.resolve();
          } catch (err) {
            first.reject(this.failureFrom(err));
          }
          continue;
        }
        // Taken off the queue before the write starts: appends from now on open the next group.
        this.logQueue.shift();
        try {
          await this.writeGroup(first);
          first.resolve();
        } catch (err) {
          first.reject(this.failureFrom(err));
        }
      }
    } finally {
      this.flushing = false;
      storesFlushingLog--;
      if (this.failure !== null) {
        for (const op of this.logQueue.splice(0)) op.reject(this.failure);
      } else if (this.logQueue.length > 0) {
        this.kickLog();
      }
    }
  }

  private async writeGroup(group: AppendGroup): Promise<void> {
    const firstBuffer = group.buffers[0];
    const firstAt = group.starts[0];
    assert(group.records > 0 && firstBuffer !== undefined && firstAt !== undefined, "a group holds records");
    let segment = this.activeSegment;
    if (segment === null || segment.bytes >= this.logSegmentBytes) segment = await this.startSegment(frameLsn(firstBuffer, firstAt));
    const at = segment.bytes;
    const iov: Buffer[] = [];
    for (let i = 0; i < group.buffers.length; i++) {
      const buffer = group.buffers[i];
      const start = group.starts[i];
      const end = group.ends[i];
      assert(buffer !== undefined && start !== undefined && end !== undefined);
      iov.push(start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end));
    }
    const file = segment.file;
    // A group that fills the segment: the next one is created while this group is written, not after.
    if (at + group.bytes >= this.logSegmentBytes) this.prepareSegment(frameLsn(firstBuffer, firstAt) + group.records);
    if (file.syncWrites && group.bytes <= LOG_SYNC_WRITE_BYTES_MAX && storesFlushingLog === 1) {
      // A small group of the only log of this process with work to do is
      // written (and, by O_DSYNC, synced) on the event loop: each thread-pool
      // hop costs 50-100 us here, as much as the sync itself, and a lone
      // writer waits out all of it. That blocks the event loop for the sync
      // (60-80 us on a quiet disk here, milliseconds on a busy one), which
      // a group this small can afford: few appends of this volume are
      // waiting, and the lease and heartbeats are counted in 250 ms. Bigger
      // groups (writers are queueing, the loop has work) and groups while
      // another volume's log is busy (their syncs would then run one after
      // another) go through the thread pool. Measured here with one writer
      // of 4 KiB records (medians of 5 to 10 one-second runs, disk shared
      // with other work): p50 append latency 182 us with writev + fdatasync,
      // 158 us with one O_DSYNC write through the pool, 128 us with it here.
      file.writevSync(iov, at);
    } else {
      const written = file.writev(iov, at);
      // While the disk writes (nothing else to do for the writers waiting on it), map the memory the next group will be framed into.
      this.frameArena.prefault();
      await written;
    }
    if (!file.syncWrites) await file.datasync();
    this.logSyncs++;
    let offset = at;
    let lsn = this.retainedBase.lsn + 1 + this.entries.length;
    let epoch = this.durableHead.epoch;
    // Records more than logUnappliedHeldBytesMax of log past the applied point
    // are not held in memory: holdThrough reads them back when they are
    // applied, and their frames go back to the arena. A replica in service
    // applies within milliseconds of appending and holds everything; a log
    // whose applied point lags (a benchmark that never applies, a replica
    // whose commit point stalls) no longer grows the process by what it
    // appends, and its frame memory is used again (measured with
    // bench/storage-profile.ts, 32 writers of 4 KiB: page faults per append
    // 1.1 -> 0.1, GC 4% -> 2% of the time, process CPU per append 13 -> 8 us).
    const heldUntil = at + this.logUnappliedHeldBytesMax - this.unappliedLogBytesBefore(segment, at);
    for (let i = 0; i < group.buffers.length; i++) {
      const buffer = group.buffers[i] as Buffer;
      const end = group.ends[i] as number;
      let released = 0;
      for (let f = group.starts[i] as number; f < end; lsn++) {
        const frameBytes = frameBytesAt(buffer, f);
        epoch = asEpoch(frameEpoch(buffer, f));
        assert(frameLsn(buffer, f) === lsn, "log entries are contiguous");
        const hold = offset + frameBytes <= heldUntil;
        this.entries.push(epoch, lsn, segment, offset, frameBytes, hold ? buffer : null, hold ? f : 0);
        if (!hold) released++;
        offset += frameBytes;
        f += frameBytes;
      }
      if (released > 0) this.frameArena.release(buffer, released);
    }
    assert(offset - at === group.bytes, "a group's frames fill its bytes");
    this.logRecordsAppended += group.records;
    segment.bytes = offset;
    segment.lastLsn = lsn - 1;
    this.durableHead = { epoch, lsn: asLsn(lsn - 1) };
  }

  /** Bytes of the log from the first record not applied to `offset` of `segment` (a durable point of the log). */
  private unappliedLogBytesBefore(segment: Segment, offset: number): number {
    const first = this.entries.get(this.applied.lsn - this.retainedBase.lsn);
    if (first === undefined) return 0;
    if (first.segment === segment) return offset - first.offset;
    let bytes = offset;
    for (let i = this.segments.indexOf(first.segment); i >= 0 && i < this.segments.length; i++) {
      const s = this.segments[i] as Segment;
      if (s === segment) return bytes;
      bytes += s === first.segment ? s.bytes - first.offset : s.bytes;
    }
    return bytes;
  }

  private segmentName(firstLsn: number): string {
    return `log-${String(this.persisted.logGeneration).padStart(8, "0")}-${String(firstLsn).padStart(16, "0")}.wal`;
  }

  /** Makes the segment starting at firstLsn the log's active one: the one prepared ahead if it is that one, else created now. */
  private async startSegment(firstLsn: number): Promise<Segment> {
    this.prepareSegment(firstLsn);
    const prepared = this.nextSegment;
    assert(prepared !== null, "a segment is being prepared");
    this.nextSegment = null;
    const file = await prepared.file;
    const segment: Segment = { name: prepared.name, firstLsn, file, bytes: 0, lastLsn: firstLsn - 1 };
    this.segments.push(segment);
    this.activeSegment = segment;
    return segment;
  }

  /**
   * Starts creating the segment that will start at firstLsn (with the log's
   * current generation), unless it is the one already prepared; a prepared
   * segment of another name is removed first. Creating a segment is a file
   * create and a directory sync (0.5-5 ms here, much more on a busy disk),
   * so writeGroup starts it while the group that fills the active segment is
   * written, and the group after it does not wait for it. A prepared segment
   * is only ever used after its directory entry is durable; one never used
   * holds no record, and recovery drops it. An error preparing one takes the
   * replica out of service at once, as any write or sync error does.
   */
  private prepareSegment(firstLsn: number): void {
    const name = this.segmentName(firstLsn);
    if (this.nextSegment?.name === name) return;
    this.dropPreparedSegment();
    const file = this.segmentPrep.then(async () => {
      const f = await this.disk.open(name, true, true);
      assert(f !== null, `created ${name}`);
      try {
        // A leftover of that name (a crash between a truncation's unlinks and its sync) starts empty.
        await f.truncate(0);
        // The new file's directory entry must be durable before any record in it is acknowledged.
        await this.disk.syncDir();
      } catch (err) {
        await f.close().catch(() => undefined);
        throw err;
      }
      return f;
    });
    this.segmentPrep = file.catch((err: unknown) => {
      this.fail(err);
    });
    this.nextSegment = { name, file };
  }

  /** Removes the prepared segment, if any (it holds no record). */
  private dropPreparedSegment(): void {
    const prepared = this.nextSegment;
    if (prepared === null) return;
    this.nextSegment = null;
    this.segmentPrep = this.segmentPrep.then(async () => {
      try {
        const f = await prepared.file;
        await f.close();
        await this.disk.unlink(prepared.name);
      } catch {
        // Not created, or not removed: a segment with no record is dropped by recovery anyway.
      }
    });
  }

  private runOnLog(run: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.logQueue.push({ kind: "control", run, resolve, reject });
      this.kickLog();
    });
  }

  /** Waits until every append accepted so far is durable and nothing else is accepted meanwhile. */
  private async drainLog(): Promise<void> {
    for (;;) {
      this.checkUsable();
      if (versionEquals(this.acceptedTail, this.durableHead) && this.logQueue.length === 0) return;
      await this.runOnLog(() => Promise.resolve());
    }
  }

  async truncateLogAfter(lsn: Lsn): Promise<void> {
    this.checkUsable();
    await this.runBarrier(() =>
      this.guard(async () => {
        await this.drainLog();
        if (lsn >= this.durableHead.lsn) return;
        if (lsn < this.applied.lsn) {
          throw new VolumeError("INVALID_ARGUMENT", `Cannot drop log records after lsn ${lsn} of volume ${this.volumeName}: records through ${this.applied.lsn} are applied`);
        }
        const keep = this.versionAt(lsn);
        assert(keep !== null, `version of lsn ${lsn} is known`);
        this.acceptedTail = keep;
        await this.runOnLog(async () => {
          const cutAt = this.entries.get(lsn + 1 - this.retainedBase.lsn - 1);
          assert(cutAt !== undefined, "the first dropped record is in the log");
          const segmentIndex = this.segments.indexOf(cutAt.segment);
          const later = this.segments.splice(segmentIndex + 1);
          // Later segments go first: a crash in between then leaves the log as it was, not with a gap that rejoins.
          for (const s of later) {
            await s.file.close();
            await this.disk.unlink(s.name);
          }
          if (later.length > 0) await this.disk.syncDir();
          await cutAt.segment.file.truncate(cutAt.offset);
          await cutAt.segment.file.datasync();
          cutAt.segment.bytes = cutAt.offset;
          cutAt.segment.lastLsn = lsn;
          this.activeSegment = cutAt.segment;
          this.entries.truncate(lsn - this.retainedBase.lsn);
          this.durableHead = keep;
        });
      }),
    );
  }

  async resetLogForResync(snapshot: Version, sessions: readonly ClientSession[], consistentThrough: Version): Promise<void> {
    this.checkUsable();
    for (const [what, x] of [["snapshot", snapshot], ["consistentThrough", consistentThrough]] as const) {
      if (!Number.isSafeInteger(x.epoch) || !Number.isSafeInteger(x.lsn) || x.epoch < 0 || x.lsn < 0) {
        throw new VolumeError("INVALID_ARGUMENT", `Cannot begin a region resync of volume ${this.volumeName}: ${what} ${formatVersion(x)} is not a version`);
      }
    }
    assert(sessions.length <= limits.clientSessionsMax, "sessions are bounded");
    const ownSessions = [...sessions];
    await this.runBarrier(() =>
      this.guard(async () => {
        await this.drainLog();
        // The block data is kept (regions equal to the source's are not copied), so make it durable
        // first: the durable applied point then never claims data that is not on disk.
        await this.checkpointLocked(false);
        const base = this.retainedBase;
        const atSnapshot = snapshot.lsn > base.lsn && snapshot.lsn <= this.durableHead.lsn ? this.entries.get(snapshot.lsn - base.lsn - 1) : undefined;
        const holds = versionEquals(snapshot, base) || atSnapshot?.epoch === snapshot.epoch;
        // Records after the snapshot already in the block data are applied again from it: back into memory.
        const reapply = holds && this.applied.lsn > snapshot.lsn ? await this.guardRead(() => this.recordsBetween(snapshot.lsn + 1, this.applied.lsn)) : [];
        // Without the snapshot, the records after it diverge: a new log generation, whose leftovers a crash cannot mix in.
        const generation = holds ? this.persisted.logGeneration : this.persisted.logGeneration + 1;
        await this.runOnLog(async () => {
          await this.persist((s) => ({
            ...s,
            logGeneration: generation,
            logBase: snapshot,
            appliedVersion: snapshot,
            superblock: {
              ...s.superblock,
              consistent: false,
              consistentThrough,
              sessions: ownSessions,
              commitLsn: asLsn(Math.max(s.superblock.commitLsn, snapshot.lsn)),
            },
          }));
          const gone = holds ? this.segments.filter((g) => g.lastLsn <= snapshot.lsn) : this.segments;
          this.segments = this.segments.filter((g) => !gone.includes(g));
          if (this.activeSegment !== null && gone.includes(this.activeSegment)) this.activeSegment = null;
          if (holds) {
            this.entries.dropFirst(snapshot.lsn - base.lsn);
          } else {
            this.entries = new LogEntries();
            this.durableHead = snapshot;
          }
          for (const r of reapply) {
            const e = this.entries.get(r.lsn - snapshot.lsn - 1);
            assert(e !== undefined && e.lsn === r.lsn, `kept record ${r.lsn} is in the log`);
            // Framed again (as it was written) to be held like a fresh append.
            const frame = encodeFrames([r], this.frameArena);
            assert(frame.end - frame.start === e.frameBytes, `record ${r.lsn} frames as it did`);
            this.entries.setHeld(r.lsn - snapshot.lsn - 1, frame.buffer, frame.start);
          }
          this.retainedBase = snapshot;
          this.acceptedTail = this.durableHead;
          this.applied = snapshot;
          this.regionsInstalled.clear();
          this.dirtyShadow.clear();
          // Past the superblock, these are leftovers that recovery skips or drops; unlinking them only saves space.
          for (const g of gone) {
            await g.file.close();
            await this.disk.unlink(g.name);
          }
          if (gone.length > 0) await this.disk.syncDir();
        });
      }),
    );
  }

  async readLog(fromLsn: Lsn, toLsn: Lsn): Promise<LogRecord[] | null> {
    this.checkUsable();
    if (fromLsn > toLsn) return [];
    if (fromLsn <= this.retainedBase.lsn || toLsn > this.durableHead.lsn) return null;
    return this.guardRead(() => this.recordsBetween(fromLsn, toLsn));
  }

  /** Records from..to, all retained; from memory where held, else read back from their segments and verified. */
  private async recordsBetween(fromLsn: number, toLsn: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    let lsn = fromLsn;
    while (lsn <= toLsn) {
      const e = this.entries.get(lsn - this.retainedBase.lsn - 1);
      assert(e !== undefined && e.lsn === lsn, `lsn ${lsn} is retained`);
      if (e.held !== null) {
        out.push(heldRecord(e.held, e.heldAt));
        lsn++;
        continue;
      }
      lsn = (await this.readBack(e, toLsn, (record) => out.push(record))) + 1;
    }
    return out;
  }

  /**
   * Reads back from `first`'s segment, with one call, the run of records not
   * held from `first` on (through toLsn, in that segment, at most a group's
   * bytes), each verified by its checksum and against its entry; calls
   * `each` with each record and its frame's place in the bytes read.
   * Returns the lsn of the last one.
   */
  private async readBack(first: LogEntry, toLsn: number, each: (record: LogRecord, bytes: Buffer, offset: number) => void): Promise<number> {
    const base = this.retainedBase.lsn;
    let last = first;
    for (;;) {
      const next = this.entries.get(last.lsn + 1 - base - 1);
      if (next === undefined || next.lsn > toLsn || next.held !== null || next.segment !== first.segment) break;
      if (next.offset + next.frameBytes - first.offset > limits.logGroupBytesMax) break;
      last = next;
    }
    const bytes = Buffer.allocUnsafe(last.offset + last.frameBytes - first.offset);
    const n = await readFully(first.segment.file, bytes, first.offset);
    let offset = 0;
    for (let lsn = first.lsn; lsn <= last.lsn; lsn++) {
      const d = decodeFrame(bytes.subarray(0, n), offset, this.blockSize);
      const e = this.entries.get(lsn - base - 1);
      if (!d.ok || d.record.lsn !== lsn || d.record.epoch !== e?.epoch || d.frameBytes !== e.frameBytes) {
        const found = d.ok ? `found ${formatVersion(recordVersion(d.record))} of ${d.frameBytes} bytes` : d.detail;
        throw new VolumeError("CORRUPT", `Log record ${lsn} of volume ${this.volumeName} failed its checksum: ${found}`);
      }
      each(d.record, bytes, offset);
      offset += d.frameBytes;
    }
    return last.lsn;
  }

  // --------------------------------------------------------------- applying

  appliedVersion(): Version {
    return this.applied;
  }

  async applyThrough(lsn: Lsn): Promise<void> {
    this.checkUsable();
    // The log this call sees is the one at its place in call order. With no
    // truncation, reset or queued append ahead of it, that is the log as
    // accepted now (later appends, which may overtake it, only add to it).
    // Otherwise it waits its turn and no append overtakes it.
    const tailAtCall = this.appendBarriers === 0 ? this.acceptedTail : null;
    const section = (): Promise<void> =>
      this.guard(async () => {
        this.checkUsable();
        if (lsn <= this.applied.lsn) return;
        const tail = tailAtCall ?? this.acceptedTail;
        if (lsn > tail.lsn) {
          throw new VolumeError("INVALID_ARGUMENT", `Cannot apply volume ${this.volumeName} through lsn ${lsn}: its log ends at ${tail.lsn}`);
        }
        // Only durable records reach the block data: wait for the appends queued so far.
        if (lsn > this.durableHead.lsn) await this.runOnLog(() => Promise.resolve());
        this.checkUsable();
        assert(lsn <= this.durableHead.lsn, `records through ${lsn} are durable once the appends before them are`);
        await this.guardRead(() => this.holdThrough(lsn));
        this.checkUsable();
        this.applyRecordsThrough(lsn);
      });
    await (tailAtCall === null ? this.runBarrier(section) : this.callOrder.run(section));
  }

  /**
   * Reads back, verified, the records after the applied point through `lsn`
   * that were appended too far ahead of it to be held, and holds them.
   */
  private async holdThrough(lsn: number): Promise<void> {
    const base = this.retainedBase.lsn;
    let l = this.applied.lsn + 1;
    while (l <= lsn) {
      const e = this.entries.get(l - base - 1);
      assert(e !== undefined && e.lsn === l, `lsn ${l} is retained`);
      if (e.held !== null) {
        l++;
        continue;
      }
      l =
        (await this.readBack(e, lsn, (record, bytes, offset) => {
          this.entries.setHeld(record.lsn - base - 1, bytes, offset);
          this.logRecordsReadBack++;
        })) + 1;
    }
  }

  private applyRecordsThrough(lsn: number): void {
    for (let l = this.applied.lsn + 1; l <= lsn; l++) {
      const e = this.entries.get(l - this.retainedBase.lsn - 1);
      assert(e !== undefined && e.held !== null, `record ${l} is held in memory (by holdThrough if not before) until it is checkpointed`);
      this.applyRecord(heldRecord(e.held, e.heldAt), null);
      this.applied = { epoch: e.epoch, lsn: e.lsn };
    }
  }

  /** The per-block lsn bounds of region `g`, made from what bounds it as a whole when it has none. */
  private blockLsnsOf(g: number): Float64Array {
    let bounds = this.blockLsns.get(g);
    if (bounds === undefined) {
      bounds = new Float64Array(this.regionBlocks).fill(this.regionLsnBound(g));
      this.blockLsns.set(g, bounds);
      for (const [old, b] of this.blockLsns) {
        if (this.blockLsns.size <= limits.blockLsnRegionsMax) break;
        let max = 0;
        for (const x of b) if (x > max) max = x;
        this.blockLsnsDropped[old] = Math.max(this.blockLsnsDropped[old] ?? 0, max);
        this.blockLsns.delete(old);
      }
    }
    return bounds;
  }

  /** An upper bound on the lsn of the last write of every block of region `g` that has no bounds of its own. */
  private regionLsnBound(g: number): number {
    const v = this.regionVersion(g);
    if (versionEquals(v, REGION_DIRTY)) return Number.MAX_SAFE_INTEGER;
    return Math.max(v.lsn, this.blockLsnsDropped[g] ?? 0);
  }

  private regionVersion(g: number): Version {
    return { epoch: asEpoch(this.regionVersionPairs[g * 2] ?? 0), lsn: asLsn(this.regionVersionPairs[g * 2 + 1] ?? 0) };
  }

  /**
   * Puts a record's effect in the overlay, region by region. A region whose
   * version already covers the record is left alone: it was installed from a
   * peer (or written at a checkpoint) with this record's effect, or newer.
   * Not so while inconsistent for a region not installed since the resync
   * began: its version says nothing of its content, the records after the
   * snapshot are applied to it again in order, and it becomes REGION_DIRTY.
   */
  private applyRecord(r: LogRecord, onlyRegion: number | null): void {
    if (coversBlocks(r.kind)) {
      const v = recordVersion(r);
      const consistent = this.persisted.superblock.consistent;
      const end = r.block + r.blockCount;
      const firstRegion = Math.floor(r.block / this.regionBlocks);
      const lastRegion = Math.floor((end - 1) / this.regionBlocks);
      for (let g = firstRegion; g <= lastRegion; g++) {
        if (onlyRegion !== null && g !== onlyRegion) continue;
        const real = consistent || this.regionsInstalled.has(g);
        if (real && compareVersion(this.regionVersion(g), v) >= 0) continue;
        const set = real ? v : REGION_DIRTY;
        const from = Math.max(r.block, g * this.regionBlocks);
        const to = Math.min(end, (g + 1) * this.regionBlocks);
        const bounds = this.blockLsnsOf(g);
        for (let b = from; b < to; b++) {
          bounds[b - g * this.regionBlocks] = r.lsn;
          if (r.kind === "write") {
            assert(r.data !== null);
            const at = (b - r.block) * this.blockSize;
            const bytes = r.data.subarray(at, at + this.blockSize);
            // A block of zeros is kept as one never written (as installRegion does): its checksum is 0 either way.
            this.overlay.set(b, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(this.zeroBlock) ? null : bytes);
          } else {
            this.overlay.set(b, null);
          }
        }
        this.regionVersionPairs[g * 2] = set.epoch;
        this.regionVersionPairs[g * 2 + 1] = set.lsn;
        this.regionsChanged.add(g);
        if (real) this.dirtyShadow.delete(g);
        else this.dirtyShadow.set(g, v);
      }
    }
  }

  // ----------------------------------------------------------------- blocks

  async readBlocks(block: number, blockCount: number): Promise<Uint8Array> {
    this.checkUsable();
    this.checkRange(block, blockCount, Math.max(limits.requestBlocksMax, this.regionBlocks));
    const read = this.readBlocksUnchecked(block, blockCount);
    this.readsInFlight.add(read);
    try {
      return await read;
    } finally {
      this.readsInFlight.delete(read);
    }
  }

  private checkRange(block: number, blockCount: number, countMax: number): void {
    if (!Number.isInteger(block) || !Number.isInteger(blockCount) || block < 0 || blockCount < 1 || blockCount > countMax) {
      throw new VolumeError("INVALID_ARGUMENT", `Cannot read blocks ${block}+${blockCount} of volume ${this.volumeName}: expected 1 to ${countMax} blocks from a block index`);
    }
    if (block + blockCount > this.blockCount) {
      throw new VolumeError("OUT_OF_RANGE", `Cannot read blocks ${block}+${blockCount} of volume ${this.volumeName}: it has ${this.blockCount} blocks`);
    }
  }

  private async readBlocksUnchecked(block: number, blockCount: number): Promise<Uint8Array> {
    const bs = this.blockSize;
    // Not zero-filled: every block below is set, read (or zeroed when it fails its checksum) or zeroed.
    const out = readBuffers.take(blockCount * bs);
    // Which blocks come from disk, and the checksum each must match, decided before any await.
    const fromDisk: { block: number; crc: number }[] = [];
    for (let i = 0; i < blockCount; i++) {
      const b = block + i;
      const pending = this.pendingBlock(b);
      if (pending !== undefined) {
        if (pending !== null) out.set(pending, i * bs);
        else out.fill(0, i * bs, (i + 1) * bs);
        continue;
      }
      const g = Math.floor(b / this.regionBlocks);
      const meta = this.metaCache.get(g) ?? (await this.loadBlockMeta(g));
      // The overlay may have gained this block while the metadata loaded.
      const later = this.pendingBlock(b);
      if (later !== undefined) {
        if (later !== null) out.set(later, i * bs);
        else out.fill(0, i * bs, (i + 1) * bs);
        continue;
      }
      const at = (b - g * this.regionBlocks) * BLOCK_META_BYTES;
      if (meta.readUInt32LE(at + 4) === 0) {
        out.fill(0, i * bs, (i + 1) * bs);
        continue;
      }
      fromDisk.push({ block: b, crc: meta.readUInt32LE(at) });
    }
    const corrupt: number[] = [];
    let firstProblem = "";
    let i = 0;
    while (i < fromDisk.length) {
      let j = i;
      while (j + 1 < fromDisk.length && fromDisk[j + 1]?.block === (fromDisk[j]?.block ?? -2) + 1) j++;
      const first = fromDisk[i];
      assert(first !== undefined);
      const runBlocks = j - i + 1;
      const into = out.subarray((first.block - block) * bs, (first.block - block + runBlocks) * bs);
      let n: number;
      try {
        n = await readFully(this.files.blocks, into, first.block * bs);
      } catch (err) {
        throw new VolumeError("CORRUPT", `Block ${first.block} of volume ${this.volumeName} could not be read: ${(err as Error).message}`, { cause: err });
      }
      for (let k = i; k <= j; k++) {
        const want = fromDisk[k];
        assert(want !== undefined);
        const offset = (want.block - first.block) * bs;
        const bytes = into.subarray(offset, offset + bs);
        const got = offset + bs <= n ? blockCrc32(want.block, bytes) : null;
        if (got !== want.crc) {
          this.checksumMismatches++;
          corrupt.push(want.block);
          bytes.fill(0);
          if (firstProblem === "") {
            firstProblem = `Block ${want.block} of volume ${this.volumeName} failed its checksum: ${got === null ? "it is missing from the data file" : `${hex(got)} does not match ${hex(want.crc)}`}`;
          }
        }
      }
      i = j + 1;
    }
    if (corrupt.length > 0) throw new CorruptBlocksError(corrupt.length === 1 ? firstProblem : `${firstProblem} (and ${corrupt.length - 1} more blocks)`, corrupt, out);
    this.blocksRead += blockCount;
    return out;
  }

  /** Loads one region's block metadata as on disk; never caches a copy a checkpoint wrote over meanwhile. */
  private async loadBlockMeta(g: number): Promise<Buffer> {
    for (;;) {
      while (this.metaWriting !== null) await this.metaWriting;
      const generation = this.metaGeneration;
      const blocks = Math.min(this.regionBlocks, this.blockCount - g * this.regionBlocks);
      const meta = Buffer.alloc(blocks * BLOCK_META_BYTES);
      try {
        await readFully(this.files.blockMeta, meta, g * this.regionBlocks * BLOCK_META_BYTES);
      } catch (err) {
        throw this.fail(err);
      }
      if (generation !== this.metaGeneration || this.metaWriting !== null) continue;
      const cached = this.metaCache.get(g);
      if (cached !== undefined) return cached;
      this.metaCache.set(g, meta);
      this.evictBlockMeta();
      return meta;
    }
  }

  private evictBlockMeta(): void {
    while (this.metaCache.size > limits.blockMetaRegionsCachedMax) {
      const oldest = this.metaCache.keys().next();
      if (oldest.done === true) break;
      this.metaCache.delete(oldest.value);
    }
  }

  regionVersions(): readonly Version[] {
    const out: Version[] = [];
    for (let g = 0; g < this.regionCount; g++) out.push(this.regionVersion(g));
    return out;
  }

  private regionSpan(region: number): { first: number; blocks: number } {
    if (!Number.isInteger(region) || region < 0 || region >= this.regionCount) {
      throw new VolumeError("OUT_OF_RANGE", `Volume ${this.volumeName} has no region ${region}: it has ${this.regionCount}`);
    }
    const first = region * this.regionBlocks;
    return { first, blocks: Math.min(this.regionBlocks, this.blockCount - first) };
  }

  async readRegion(region: number, sinceLsn: Lsn | null = null): Promise<{ data: Uint8Array; version: Version; blocks: Uint8Array | null }> {
    this.checkUsable();
    const { first, blocks } = this.regionSpan(region);
    // In call order, so that no record is applied between the bytes and the version.
    return this.callOrder.run(async () => {
      this.checkUsable();
      const version = this.regionVersion(region);
      if (sinceLsn === null) return { data: await this.readBlocks(first, blocks), version, blocks: null };
      // A dirty region's content is no prefix of the history: every block goes (its whole-region bound), whatever its own bounds say.
      const bounds = versionEquals(version, REGION_DIRTY) ? undefined : this.blockLsns.get(region);
      const whole = this.regionLsnBound(region);
      const mask = emptyBlockMask(blocks);
      const runs: { from: number; count: number }[] = [];
      for (let i = 0; i < blocks; i++) {
        const bound = bounds?.[i] ?? whole;
        if (bound <= sinceLsn) continue;
        maskSet(mask, i);
        const last = runs[runs.length - 1];
        if (last !== undefined && last.from + last.count === i) last.count++;
        else runs.push({ from: i, count: 1 });
      }
      const parts: Uint8Array[] = [];
      for (const run of runs) parts.push(await this.readBlocks(first + run.from, run.count));
      return { data: parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts), version, blocks: mask };
    });
  }

  async blockChecksums(region: number): Promise<Uint32Array> {
    this.checkUsable();
    const { first, blocks } = this.regionSpan(region);
    // In call order: a checkpoint moves blocks from the in-memory overlay into the metadata.
    return this.callOrder.run(async () => {
      this.checkUsable();
      const out = storedChecksums(this.metaCache.get(region) ?? (await this.loadBlockMeta(region)));
      for (let i = 0; i < blocks; i++) {
        const pending = this.pendingBlock(first + i);
        if (pending !== undefined) out[i] = pending === null ? 0 : blockCrc32(first + i, pending);
      }
      return out;
    });
  }

  async regionDigests(first: number, count: number): Promise<number[]> {
    this.checkUsable();
    if (!Number.isInteger(count) || count < 1) throw new VolumeError("INVALID_ARGUMENT", `Cannot digest ${count} regions of volume ${this.volumeName}`);
    this.regionSpan(first);
    this.regionSpan(first + count - 1);
    return this.callOrder.run(async () => {
      this.checkUsable();
      // While this holds the call order no block is applied or installed, and no checkpoint freezes;
      // a background checkpoint may finish, though: it drops its frozen blocks as the cached metadata
      // takes their checksums. So each region is digested at once from its metadata as it is then.
      const live = blocksByRegion(this.overlay, this.regionBlocks);
      const frozen = this.frozenOverlay;
      const frozenByRegion = frozen === null ? null : blocksByRegion(frozen, this.regionBlocks);
      const out: number[] = [];
      for (let g = first; g < first + count; g++) {
        const loaded = this.metaCache.get(g) ?? (await this.loadBlockMeta(g));
        this.checkUsable();
        const meta = this.metaCache.get(g) ?? loaded;
        const base = g * this.regionBlocks;
        const sums = storedChecksums(meta);
        // Blocks a checkpoint is writing, if it still is, then those applied or installed since (they win, as in pendingBlock).
        assert(this.frozenOverlay === null || this.frozenOverlay === frozen, "no checkpoint freezes while a call holds the call order");
        for (const [b, bytes] of (this.frozenOverlay === null ? undefined : frozenByRegion?.get(g)) ?? []) sums[b - base] = bytes === null ? 0 : blockCrc32(b, bytes);
        for (const [b, bytes] of live.get(g) ?? []) sums[b - base] = bytes === null ? 0 : blockCrc32(b, bytes);
        out.push(regionDigest(sums));
      }
      return out;
    });
  }

  async installRegion(region: number, data: Uint8Array, version: Version, copiedAt: Lsn, mask: Uint8Array | null = null): Promise<void> {
    this.checkUsable();
    const { first, blocks } = this.regionSpan(region);
    if (mask !== null && !maskFits(mask, blocks)) {
      throw new VolumeError("INVALID_ARGUMENT", `Cannot install region ${region} of volume ${this.volumeName}: its block mask does not fit its ${blocks} blocks`);
    }
    const carried = maskCount(mask, blocks);
    if (data.length !== carried * this.blockSize) {
      throw new VolumeError("INVALID_ARGUMENT", `Cannot install region ${region} of volume ${this.volumeName}: ${data.length} bytes, expected ${carried * this.blockSize}`);
    }
    if (!Number.isSafeInteger(version.epoch) || !Number.isSafeInteger(version.lsn) || version.epoch < 0 || version.lsn < 0) {
      throw new VolumeError("INVALID_ARGUMENT", `Cannot install region ${region} of volume ${this.volumeName}: ${formatVersion(version)} is not a version`);
    }
    // Kept, not copied (see ReplicaStore.installRegion): the overlay holds views of it until a checkpoint writes them.
    const own = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.callOrder.run(() =>
      this.guard(async () => {
        this.checkUsable();
        // Records applied here after the copy was taken must win over it.
        const reapply = copiedAt < this.applied.lsn ? { from: Math.max(copiedAt, this.retainedBase.lsn) + 1, to: this.applied.lsn } : null;
        if (reapply !== null && copiedAt < this.retainedBase.lsn) {
          // Trimmed records may have touched it: a real version says so, a dirty one cannot tell.
          const current = this.regionVersion(region);
          const touched = current.lsn > copiedAt || versionEquals(current, REGION_DIRTY);
          assert(!touched, `records after lsn ${copiedAt} touching region ${region} are retained`);
        }
        const later = reapply === null ? [] : await this.recordsBetween(reapply.from, reapply.to);
        // The blocks not carried hold what the source's do: none was written since this replica's version of the region.
        let k = 0;
        for (let i = 0; i < blocks; i++) {
          if (mask !== null && !maskHas(mask, i)) continue;
          const bytes = own.subarray(k * this.blockSize, (k + 1) * this.blockSize);
          k++;
          this.overlay.set(first + i, bytes.equals(this.zeroBlock) ? null : bytes);
        }
        // Every block's bound is the copy's version now (the records re-applied below set theirs).
        this.blockLsns.delete(region);
        this.regionVersionPairs[region * 2] = version.epoch;
        this.regionVersionPairs[region * 2 + 1] = version.lsn;
        this.regionsChanged.add(region);
        this.regionsInstalled.add(region);
        this.dirtyShadow.delete(region);
        for (const r of later) this.applyRecord(r, region);
      }),
    );
  }

  // ------------------------------------------------------------- checkpoint

  /**
   * A checkpoint that lets applying and installing go on while it writes
   * (the driver's periodic one). In call order it takes the overlay as it is
   * (the blocks of every record applied and region installed so far) and
   * starts a new one; then, out of call order, it writes what it took
   * (reads find those blocks in memory until they are on disk); then, in
   * call order again, it records the new applied point, unless another
   * checkpoint or a resync reset came in between (that one recorded its own,
   * later or reset, point). Every other call that checkpoints first waits
   * for such a write to end. So a resync target goes on installing the
   * regions that arrive while the last ones go to disk, and a primary goes
   * on applying.
   */
  async checkpoint(): Promise<void> {
    this.checkUsable();
    const taken = await this.callOrder.run(() =>
      this.guard(async () => {
        this.checkUsable();
        await this.settleFrozenWrite();
        const generation = ++this.checkpointGeneration;
        const f = await this.freeze();
        return { f, generation, write: this.startFrozenWrite(f) };
      }),
    );
    if (taken.write !== null) await taken.write;
    await this.callOrder.run(() =>
      this.guard(async () => {
        if (this.closed || this.failure !== null || taken.generation !== this.checkpointGeneration) return;
        await this.finishCheckpoint(taken.f.target, true);
      }),
    );
  }

  /** A checkpoint done within one call-order turn (the caller holds it): after a background one's write, if any. */
  private async checkpointLocked(trim: boolean): Promise<void> {
    this.checkUsable();
    await this.settleFrozenWrite();
    this.checkUsable();
    this.checkpointGeneration++;
    const f = await this.freeze();
    await this.startFrozenWrite(f);
    await this.finishCheckpoint(f.target, trim);
  }

  /**
   * Starts writing what a checkpoint took (null if nothing): reads find its
   * blocks in frozenOverlay until they are on disk, and frozenWrite settles
   * when the write is over, whether it succeeded or not.
   */
  private startFrozenWrite(f: FrozenCheckpoint): Promise<void> | null {
    if (f.overlay.size === 0 && f.regions.length === 0) return null;
    this.frozenOverlay = f.overlay;
    const write = this.guard(() => this.writeFrozen(f));
    const settled: Promise<void> = write
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        if (this.frozenWrite === settled) this.frozenWrite = null;
      });
    this.frozenWrite = settled;
    return write;
  }

  private async settleFrozenWrite(): Promise<void> {
    while (this.frozenWrite !== null) await this.frozenWrite;
  }

  /** The overlay when a block is in it, else the blocks a background checkpoint is writing; undefined: read the disk. */
  private pendingBlock(b: number): Uint8Array | null | undefined {
    const live = this.overlay.get(b);
    return live !== undefined ? live : this.frozenOverlay?.get(b);
  }

  /**
   * Takes what a checkpoint writes, at the applied point now: the overlay
   * (a new one starts) and the changed regions with their versions now.
   * Raises the durable commit point first: recovery replays through it, so
   * it must cover every record about to reach the block data.
   */
  private async freeze(): Promise<FrozenCheckpoint> {
    const target = this.applied;
    if (this.persisted.superblock.commitLsn < target.lsn) {
      await this.persist((s) => ({ ...s, superblock: { ...s.superblock, commitLsn: target.lsn } }));
    }
    const overlay = this.overlay;
    this.overlay = new Map();
    const regions = [...this.regionsChanged]
      .sort((a, b) => a - b)
      .map((region) => ({ region, epoch: this.regionVersionPairs[region * 2] ?? 0, lsn: this.regionVersionPairs[region * 2 + 1] ?? 0 }));
    this.regionsChanged.clear();
    return { target, overlay, regions };
  }

  /** Records `target` as the applied point, with the sessions and configuration as of it, and trims the log. */
  private async finishCheckpoint(target: Version, trim: boolean): Promise<void> {
    const before = this.persisted.appliedVersion;
    // The sessions as of the new applied point: those of the last one, and the records applied since (held in memory).
    const appliedSince: LogRecord[] = [];
    for (let l = Math.max(before.lsn, this.retainedBase.lsn) + 1; l <= target.lsn; l++) {
      const e = this.entries.get(l - this.retainedBase.lsn - 1);
      assert(e !== undefined && e.held !== null, `applied record ${l} is held in memory until it is checkpointed`);
      appliedSince.push(heldRecord(e.held, e.heldAt));
    }
    const sessions = foldSessions(this.persisted.superblock.sessions, appliedSince, limits.clientSessionsMax);
    // The configuration as of the applied point: its record may leave the log now.
    const config = configAfter(this.persisted.superblock.config, appliedSince);
    await this.persist((s) => ({ ...s, appliedVersion: target, superblock: { ...s.superblock, sessions, config } }));
    for (let l = Math.max(before.lsn, this.retainedBase.lsn) + 1; l <= target.lsn; l++) {
      const i = l - this.retainedBase.lsn - 1;
      if (i >= 0 && i < this.entries.length) this.entries.setHeld(i, null, 0);
    }
    if (trim) await this.trimLog(target);
  }

  /** Writes a frozen overlay's blocks, their checksums and the frozen region versions, each step synced before the next. */
  private async writeFrozen(f: FrozenCheckpoint): Promise<void> {
    // A read that chose to read a block from disk before it entered the overlay must finish before the block changes.
    await Promise.allSettled([...this.readsInFlight]);
    const bs = this.blockSize;
    const overlay = f.overlay;
    const blocks = [...overlay.keys()].sort((a, b) => a - b);
    const regions: number[] = [];
    for (const b of blocks) {
      const g = Math.floor(b / this.regionBlocks);
      if (regions[regions.length - 1] !== g) regions.push(g);
    }
    const pages = new Map<number, Buffer>();
    await writeInParallel(regions.length, async (i) => {
      const g = regions[i];
      assert(g !== undefined);
      pages.set(g, Buffer.from(this.metaCache.get(g) ?? (await this.loadBlockMeta(g))));
    });
    // 1. Block data, synced before any checksum names it; contiguous blocks go in one writev.
    const runs: { first: number; buffers: Uint8Array[] }[] = [];
    let run: { first: number; buffers: Uint8Array[] } | null = null;
    let checksummed = 0;
    for (const b of blocks) {
      // The checksums cost about 2 us a block: let appends (and reads) in every so often rather than hold them up for all.
      if (++checksummed % CHECKPOINT_BLOCKS_PER_TURN === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const bytes = overlay.get(b);
      const g = Math.floor(b / this.regionBlocks);
      const page = pages.get(g);
      assert(page !== undefined && bytes !== undefined);
      const at = (b - g * this.regionBlocks) * BLOCK_META_BYTES;
      if (bytes === null) {
        page.writeUInt32LE(0, at);
        page.writeUInt32LE(0, at + 4);
        continue;
      }
      page.writeUInt32LE(blockCrc32(b, bytes), at);
      page.writeUInt32LE(1, at + 4);
      if (run !== null && run.first + run.buffers.length === b && run.buffers.length < CHECKPOINT_RUN_BLOCKS_MAX) {
        run.buffers.push(bytes);
      } else {
        run = { first: b, buffers: [bytes] };
        runs.push(run);
      }
    }
    // Synced a batch at a time: one sync of all the blocks would hold the file system's journal (and so every
    // O_DSYNC write of the log behind it) for as long as all of them take to reach the disk.
    for (let from = 0; from < runs.length; ) {
      let to = from;
      for (let bytes = 0; to < runs.length && bytes < CHECKPOINT_SYNC_BYTES; to++) bytes += (runs[to]?.buffers.length ?? 0) * bs;
      const batch = runs.slice(from, to);
      await writeInParallel(batch.length, (i) => {
        const r = batch[i];
        assert(r !== undefined);
        return this.files.blocks.writev(r.buffers, r.first * bs);
      });
      await this.files.blocks.datasync();
      from = to;
    }
    if (runs.length === 0) await this.files.blocks.datasync();
    // 2. Checksums, synced before a region version says the region is done.
    let release = (): void => undefined;
    this.metaWriting = new Promise<void>((resolve) => (release = resolve));
    this.metaGeneration++;
    try {
      const metaPages = [...pages];
      await writeInParallel(metaPages.length, (i) => {
        const entry = metaPages[i];
        assert(entry !== undefined);
        return this.files.blockMeta.writev([entry[1]], entry[0] * this.regionBlocks * BLOCK_META_BYTES);
      });
      await this.files.blockMeta.datasync();
      // 3. Region versions as they were when frozen (a region changed since then has newer blocks in the overlay), adjacent regions in one write.
      const regionRuns: { first: number; versions: { epoch: number; lsn: number }[] }[] = [];
      for (const r of f.regions) {
        const last = regionRuns[regionRuns.length - 1];
        if (last !== undefined && last.first + last.versions.length === r.region) last.versions.push(r);
        else regionRuns.push({ first: r.region, versions: [r] });
      }
      await writeInParallel(regionRuns.length, (i) => {
        const run = regionRuns[i];
        assert(run !== undefined);
        const bytes = Buffer.alloc(run.versions.length * REGION_VERSION_BYTES);
        run.versions.forEach((v, k) => {
          bytes.writeDoubleLE(v.epoch, k * REGION_VERSION_BYTES);
          bytes.writeDoubleLE(v.lsn, k * REGION_VERSION_BYTES + 8);
        });
        return this.files.regions.writev([bytes], run.first * REGION_VERSION_BYTES);
      });
      await this.files.regions.datasync();
      // The blocks are on disk and their checksums in the cache: reads take them from there now.
      for (const [g, page] of pages) {
        this.metaCache.delete(g);
        this.metaCache.set(g, page);
      }
      this.evictBlockMeta();
      if (this.frozenOverlay === overlay) this.frozenOverlay = null;
    } finally {
      this.metaGeneration++;
      this.metaWriting = null;
      release();
    }
  }

  /**
   * Deletes the oldest segments whose records are all applied, keeping at
   * most logRetainedBytesMax (and limits.logRetainedRecordsMax records) of
   * applied records for catch-up. Appends go on meanwhile: only dropping the
   * segments from the log runs on the log queue, between two groups, and it
   * does no I/O there.
   */
  private async trimLog(applied: Version): Promise<void> {
    let keptBytes = 0;
    let keptRecords = 0;
    let cut = -1;
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i];
      assert(s !== undefined);
      if (s.bytes === 0 || s.lastLsn > applied.lsn) continue;
      keptBytes += s.bytes;
      keptRecords += s.lastLsn - s.firstLsn + 1;
      if (keptBytes > this.logRetainedBytesMax || keptRecords > limits.logRetainedRecordsMax) {
        cut = i;
        break;
      }
    }
    if (cut < 0) return;
    const candidates = this.segments.slice(0, cut + 1);
    const lastCandidate = candidates[candidates.length - 1];
    assert(lastCandidate !== undefined);
    const base = this.versionAt(asLsn(lastCandidate.lastLsn));
    assert(base !== null, "the last trimmed record is known");
    // The superblock moves first: a segment whose unlink a crash undoes is then recognised as trimmed.
    await this.persist((s) => ({ ...s, logBase: base }));
    let gone: Segment[] = [];
    await this.runOnLog(() => {
      // The active segment may have taken more records meanwhile: then it stays, and recovery skips its records through base.
      gone = candidates.filter((g) => g.lastLsn <= base.lsn);
      this.segments = this.segments.filter((g) => !gone.includes(g));
      if (this.activeSegment !== null && gone.includes(this.activeSegment)) this.activeSegment = null;
      this.entries.dropFirst(base.lsn - this.retainedBase.lsn);
      this.retainedBase = base;
      return Promise.resolve();
    });
    // No group writes to these any more (none is active), so they close outside the log queue.
    for (const s of gone) {
      await s.file.close();
      await this.disk.unlink(s.name);
    }
    if (gone.length > 0) await this.disk.syncDir();
  }

  // ---------------------------------------------------------------- failure

  /** What recovery cut from the log when this store opened, or null. */
  recoveryCut(): string | null {
    return this.cutReason;
  }

  heldBlocks(): number {
    return this.overlay.size + (this.frozenOverlay?.size ?? 0);
  }

  stats(): ReplicaStoreStats {
    return {
      logSyncs: this.logSyncs,
      logRecordsAppended: this.logRecordsAppended,
      logRecordsReadBack: this.logRecordsReadBack,
      blocksRead: this.blocksRead,
      checksumMismatches: this.checksumMismatches,
    };
  }

  private checkUsable(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new AssertionError(`Replica store of volume ${this.volumeName} is closed`);
  }

  /** Takes the replica out of service for good: a write or sync that failed is never retried on the same data. */
  private fail(err: unknown): VolumeError {
    if (this.failure === null) {
      const detail = err instanceof Error ? err.message : String(err);
      this.failure = new VolumeError("DISK_FAILED", `Replica of volume ${this.volumeName} is out of service after a disk error: ${detail}`, { cause: err });
      for (const op of this.logQueue.splice(0)) op.reject(this.failure);
    }
    return this.failure;
  }

  private failureFrom(err: unknown): unknown {
    if (err instanceof VolumeError || err instanceof AssertionError) return err;
    return this.fail(err);
  }

  private async guard<T>(section: () => Promise<T>): Promise<T> {
    try {
      return await section();
    } catch (err) {
      throw this.failureFrom(err);
    }
  }

  /** Reads fail the replica only through its metadata; a bad block is CORRUPT, not a dead disk. */
  private async guardRead<T>(section: () => Promise<T>): Promise<T> {
    try {
      return await section();
    } catch (err) {
      if (err instanceof VolumeError || err instanceof AssertionError) throw err;
      throw new VolumeError("CORRUPT", `Log of volume ${this.volumeName} could not be read: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Stops using the files without syncing or closing anything, as a process
   * killed at this instant would. For the in-memory store's crash().
   */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.fail(new Error("the replica crashed"));
    this.closed = true;
    await this.closeFiles();
    await this.onClose();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.failure === null) {
        await this.runBarrier(async () => {
          await this.drainLog();
          await this.guard(() => this.checkpointLocked(false));
          this.dropPreparedSegment();
        });
      }
    } finally {
      this.closed = true;
      await this.closeFiles();
      await this.onClose();
    }
  }

  private async closeFiles(): Promise<void> {
    const all = [this.files.blocks, this.files.blockMeta, this.files.regions, ...this.segments.map((s) => s.file)];
    this.segments = [];
    const prepared = this.nextSegment;
    this.nextSegment = null;
    await this.segmentPrep;
    if (prepared !== null) {
      try {
        all.push(await prepared.file);
      } catch {
        // Never created.
      }
    }
    for (const f of all) {
      try {
        await f.close();
      } catch {
        // Closing after a disk failure may fail again; the handle is gone either way.
      }
    }
  }
}

assert(limits.logGroupBytesMax >= frameBytesMax(limits.blockSize), "one group holds the largest record");
assert(limits.blockMetaRegionsCachedMax >= 1, "at least one region's metadata is cached");

/** The checksums a region's block metadata holds, one per block (0 for a block never written). */
function storedChecksums(meta: Buffer): Uint32Array {
  const out = new Uint32Array(meta.length / BLOCK_META_BYTES);
  const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength);
  for (let i = 0, at = 0; i < out.length; i++, at += BLOCK_META_BYTES) out[i] = view.getUint32(at + 4, true) === 0 ? 0 : view.getUint32(at, true);
  return out;
}

/** An overlay's blocks grouped by region. */
function blocksByRegion(overlay: ReadonlyMap<number, Uint8Array | null>, regionBlocks: number): Map<number, [number, Uint8Array | null][]> {
  const out = new Map<number, [number, Uint8Array | null][]>();
  for (const [b, bytes] of overlay) {
    const g = Math.floor(b / regionBlocks);
    let list = out.get(g);
    if (list === undefined) out.set(g, (list = []));
    list.push([b, bytes]);
  }
  return out;
}

/**
 * The write-ahead log's record frame. Little-endian, fixed header:
 *
 *   0  u32 frameBytes   whole frame: header + clientId + payload
 *   4  u32 crc          CRC-32 of bytes 8 .. frameBytes
 *   8  f64 epoch        (integers up to 2^53, as everywhere in replivol)
 *  16  f64 lsn
 *  24  u8  kind         0 write, 1 zeroes, 2 trim, 3 mountStart, 4 config
 *  25  u8  clientIdBytes
 *  26  u16 reserved, 0
 *  28  u32 block
 *  32  u32 blockCount
 *  36  f64 clientSeq
 *  44  u32 payloadBytes blockCount * blockSize for a write, the encoded
 *                       configuration for a config record, else 0
 *  48  clientId (UTF-8), then payload
 *
 * The length comes first so a reader can step over frames, and is covered by
 * the consistency checks (frameBytes must equal the sum of its parts) rather
 * than by the CRC, which covers everything after it.
 */
import { asBlock, asClientId, asEpoch, asLsn, type LogRecord, type RecordKind } from "../core/types.js";
import { assert } from "../core/assert.js";
import { CONFIG_BYTES_MAX } from "../core/config.js";
import { limits } from "../core/limits.js";
import { crc32 } from "./crc32.js";

export const FRAME_HEADER_BYTES = 48;
export const CLIENT_ID_BYTES_MAX = 255;

const KINDS: readonly RecordKind[] = ["write", "zeroes", "trim", "mountStart", "config"];

function kindCode(kind: RecordKind): number {
  switch (kind) {
    case "write":
      return 0;
    case "zeroes":
      return 1;
    case "trim":
      return 2;
    case "mountStart":
      return 3;
    case "config":
      return 4;
  }
}

export function frameBytesMax(blockSize: number): number {
  return FRAME_HEADER_BYTES + CLIENT_ID_BYTES_MAX + limits.requestBlocksMax * blockSize;
}

export function frameBytesOf(record: LogRecord): number {
  return FRAME_HEADER_BYTES + Buffer.byteLength(record.clientId, "utf8") + (record.data?.length ?? 0);
}

/**
 * Carves frames out of large slabs: one allocation per slab instead of one
 * per append (a 4 KiB record is just too big for Node's own buffer pool).
 * Consecutive frames then sit next to each other, so a group is written as
 * one contiguous range (two where it straddles a slab boundary), with no
 * Buffer made per frame. A slab lives while any frame in it is referenced.
 * Frames over a quarter of a slab get a buffer of their own.
 *
 * Frames the log holds (see DiskReplicaStore.writeGroup) stay in memory until
 * a checkpoint, so under a steady stream of appends that are applied soon
 * after (a replica in a cluster) nearly every frame lands in memory never
 * touched before, and the
 * first touch of a page is a page fault: measured on the 2-core VM this was
 * tuned on, 2-15 us per 4 KiB page (depending on load), against 0.2-1 us to
 * copy 4 KiB into mapped memory; with it, framing a 4 KiB record cost more
 * than its CRC-32. prefault() takes that
 * cost off the critical path: the log calls it while its group's write (an
 * O_DSYNC write, so the sync too) runs (the event loop is otherwise idle
 * then, every writer of a busy log waiting), so the next group's frames are
 * copied into memory that is already mapped. (Measured again with the one-hop
 * O_DSYNC write, 32 writers: without it the CPU phase of a group was 210-260
 * us, with it 155-190 us.)
 * Measured with bench/storage-profile.ts: with a loaded disk the CPU phase
 * of a 32-append group fell from a median 258 to 167 us; with a quiet disk
 * (fdatasync near 150 us) the touching no longer fits inside the sync and
 * the gain is about even.
 * (Tried and dropped: carving 1 MiB frames from 4 MiB slabs to prefault them
 * too; the 1 MiB row of bench/storage.ts measured no better, if anything
 * worse, prefaulting 1 MiB per record on the event loop.)
 *
 * A slab is used again, instead of a new one allocated, once every frame
 * carved from it was released: written, and never held (see release()). A
 * frame the log holds can be read or applied, and views of it then live on
 * (in the block overlay, in records handed out), so it is never released,
 * and its slab is left to the garbage collector. Memory used again is
 * mapped already (no page faults) and is no new external memory for V8 to
 * count towards its next garbage collection: both came to several us per
 * 4 KiB record while the log appended far ahead of its applied point.
 */
export class FrameArena {
  private slab: Buffer = Buffer.alloc(0);
  /**
   * What the arena counted of the slabs it carved from and has not used
   * again. Weak: a slab with a frame never released (held by the log,
   * refused, framed again by a resync reset) lives only as long as
   * something else refers to it.
   */
  private readonly states = new WeakMap<Buffer, SlabState>();
  /** Slabs whose frames were all released: used again before any new one. */
  private readonly free: Buffer[] = [];
  private used = 0;
  /** Pages of `slab` from max(used, touched) on have not been touched yet. */
  private touched = 0;
  /** The slab that comes next, allocated (and partly touched) ahead by prefault(). */
  private spare: Buffer | null = null;
  private spareTouched = 0;
  /** Slab bytes handed out since the last prefault(): how far ahead the next one maps. */
  private carved = 0;
  /** Where the bytes of the last reserve() start in the buffer it returned. */
  reservedAt = 0;
  constructor(private readonly slabBytes = 1024 * 1024) {}

  /**
   * Reserves `bytes` contiguous bytes for `frames` frames: they are
   * reservedAt .. reservedAt + bytes of the buffer returned.
   */
  reserve(bytes: number, frames: number): Buffer {
    if (bytes > this.slabBytes / 4) {
      this.reservedAt = 0;
      return Buffer.allocUnsafeSlow(bytes);
    }
    if (this.slab.length - this.used < bytes) {
      const retired = this.slab;
      if (this.spare !== null) {
        this.slab = this.spare;
        this.touched = this.spareTouched;
        this.spare = null;
        this.spareTouched = 0;
      } else {
        [this.slab, this.touched] = this.newSlab();
      }
      this.used = 0;
      this.states.set(this.slab, { frames: 0, released: 0 });
      this.recycleIfDone(retired);
    }
    const state = this.states.get(this.slab);
    if (state !== undefined) state.frames += frames;
    this.reservedAt = this.used;
    this.used += bytes;
    this.carved += bytes;
    return this.slab;
  }

  /**
   * `frames` frames of `buffer` were written and the log does not hold
   * them (so no view of them was ever made): once every frame of a slab the
   * arena has moved past is released, the slab is used again. At most once
   * per frame; a frame never released only keeps its slab from being used
   * again.
   */
  release(buffer: Buffer, frames: number): void {
    const state = this.states.get(buffer);
    if (state === undefined) return;
    state.released += frames;
    assert(state.released <= state.frames, "a slab's frames are released once each");
    if (buffer !== this.slab) this.recycleIfDone(buffer);
  }

  /** Slabs ready to be used again (for tests). */
  get freeSlabs(): number {
    return this.free.length;
  }

  /** A slab released before if there is one (its memory is mapped: touched throughout), else a new one (touched nowhere). */
  private newSlab(): [slab: Buffer, touched: number] {
    const reused = this.free.pop();
    return reused === undefined ? [Buffer.allocUnsafeSlow(this.slabBytes), 0] : [reused, this.slabBytes];
  }

  private recycleIfDone(buffer: Buffer): void {
    const state = this.states.get(buffer);
    if (state === undefined || state.released < state.frames) return;
    this.states.delete(buffer);
    if (this.free.length < FREE_SLABS_MAX) this.free.push(buffer);
  }

  /**
   * Touches one byte of every page of the slab memory the arena will hand
   * out next, as much as it handed out since the last call (at most a slab:
   * the next group of a busy log is about as large as the last), so that
   * copying frames into it later faults no page in. Writes only bytes not
   * yet handed out by reserve() (from `used` on, or in the spare slab), so it
   * never touches a frame, written or not.
   */
  prefault(): void {
    const want = this.used + Math.min(this.carved, this.slabBytes);
    this.carved = 0;
    this.touched = touchPages(this.slab, Math.max(this.touched, this.used), Math.min(want, this.slab.length));
    const rest = want - this.slab.length;
    if (rest > 0) {
      if (this.spare === null) [this.spare, this.spareTouched] = this.newSlab();
      this.spareTouched = touchPages(this.spare, this.spareTouched, Math.min(rest, this.spare.length));
    }
  }
}

/** Released slabs kept for use again; more go to the garbage collector. */
const FREE_SLABS_MAX = 8;

interface SlabState {
  /** Frames carved from the slab so far. */
  frames: number;
  /** Of those, frames released (see FrameArena.release). */
  released: number;
}

const PAGE_BYTES = 4096;

/** Writes a zero at `from` and every PAGE_BYTES after it below `to`; returns where the next call should start. */
function touchPages(buffer: Buffer, from: number, to: number): number {
  let at = from;
  for (; at < to; at += PAGE_BYTES) buffer[at] = 0;
  return at;
}

/** Records framed by encodeFrames: bytes start .. end of `buffer`, one frame per record, in order. */
export interface EncodedFrames {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}

/**
 * The UTF-8 bytes of the last client id encoded: appends of one client in a
 * row (the usual case) then copy 5 to 255 bytes instead of encoding again.
 * The buffer returned is shared: read it, never write to it.
 */
let lastClientId = "";
let lastClientIdBytes: Buffer = Buffer.alloc(0);

export function clientIdBytes(clientId: string): Buffer {
  if (clientId !== lastClientId) {
    lastClientIdBytes = Buffer.from(clientId, "utf8");
    lastClientId = clientId;
  }
  return lastClientIdBytes;
}

/**
 * Encodes records into one contiguous run of the arena: the one copy of
 * their payloads, so the caller may reuse its own buffers as soon as
 * appendLog returned. Makes no object per record (no record copy, no view
 * of its data, no list of frame sizes): the log reads what it needs back
 * from the frames (frameEpoch, frameLsn, frameBytesAt, and heldRecord when
 * it applies one), so that what it keeps per record until a checkpoint is
 * one small entry, which is less for the garbage collector to mark.
 */
export function encodeFrames(records: readonly LogRecord[], arena: FrameArena): EncodedFrames {
  let total = 0;
  for (const r of records) total += FRAME_HEADER_BYTES + clientIdBytes(r.clientId).length + (r.data?.length ?? 0);
  const bytes = arena.reserve(total, records.length);
  const view = viewOf(bytes);
  const begin = arena.reservedAt;
  let at = begin;
  for (const r of records) {
    const start = at;
    const cid = clientIdBytes(r.clientId);
    const cidBytes = cid.length;
    const payloadBytes = r.data?.length ?? 0;
    const frameBytes = FRAME_HEADER_BYTES + cidBytes + payloadBytes;
    // (Through a DataView and a byte loop: Buffer's write methods and copy() check their arguments, per field.)
    view.setUint32(start, frameBytes, true);
    view.setFloat64(start + 8, r.epoch, true);
    view.setFloat64(start + 16, r.lsn, true);
    view.setUint32(start + 24, kindCode(r.kind) | (cidBytes << 8), true);
    view.setUint32(start + 28, r.block, true);
    view.setUint32(start + 32, r.blockCount, true);
    view.setFloat64(start + 36, r.clientSeq, true);
    view.setUint32(start + 44, payloadBytes, true);
    const cidAt = start + FRAME_HEADER_BYTES;
    for (let i = 0; i < cidBytes; i++) bytes[cidAt + i] = cid[i] as number;
    if (r.data !== null) bytes.set(r.data, cidAt + cidBytes);
    // A plain Uint8Array view: Buffer#subarray costs several times as much, per frame.
    view.setUint32(start + 4, crc32(new Uint8Array(bytes.buffer, bytes.byteOffset + start + 8, frameBytes - 8)), true);
    at = start + frameBytes;
  }
  return { buffer: bytes, start: begin, end: at };
}

/** A DataView of the last buffer asked for: frames of one slab in a row share one. */
let lastViewed: Buffer | null = null;
let lastView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

function viewOf(bytes: Buffer): DataView {
  if (bytes !== lastViewed) {
    lastView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    lastViewed = bytes;
  }
  return lastView;
}

/** Length of the frame at `at` of a frame this process encoded or verified. */
export function frameBytesAt(bytes: Buffer, at: number): number {
  return viewOf(bytes).getUint32(at, true);
}

export function frameEpoch(bytes: Buffer, at: number): number {
  return viewOf(bytes).getFloat64(at + 8, true);
}

export function frameLsn(bytes: Buffer, at: number): number {
  return viewOf(bytes).getFloat64(at + 16, true);
}

/**
 * The record of a frame held in memory, which encodeFrames wrote or
 * decodeFrame verified: not checked again (its CRC would cost as much as
 * framing it did). Its data is a view into `bytes`.
 */
export function heldRecord(bytes: Buffer, at: number): LogRecord {
  const frameBytes = bytes.readUInt32LE(at);
  const kind = KINDS[bytes[at + 24] ?? -1];
  const cidBytes = bytes[at + 25] ?? 0;
  const payloadBytes = bytes.readUInt32LE(at + 44);
  assert(kind !== undefined && FRAME_HEADER_BYTES + cidBytes + payloadBytes === frameBytes, "a held frame is whole");
  const cidAt = at + FRAME_HEADER_BYTES;
  const payloadAt = cidAt + cidBytes;
  return {
    epoch: asEpoch(bytes.readDoubleLE(at + 8)),
    lsn: asLsn(bytes.readDoubleLE(at + 16)),
    kind,
    block: asBlock(bytes.readUInt32LE(at + 28)),
    blockCount: bytes.readUInt32LE(at + 32),
    data: kind === "write" || kind === "config" ? bytes.subarray(payloadAt, payloadAt + payloadBytes) : null,
    clientId: asClientId(bytes.toString("utf8", cidAt, payloadAt)),
    clientSeq: bytes.readDoubleLE(at + 36),
  };
}

export type DecodeResult =
  | { readonly ok: true; readonly record: LogRecord; readonly frameBytes: number }
  /** `torn`: the bytes end inside the frame. `corrupt`: the frame is complete but fails a check. */
  | { readonly ok: false; readonly reason: "torn" | "corrupt"; readonly detail: string };

/**
 * Decodes the frame at `offset`. Nothing in a frame is trusted until its CRC
 * and every consistency check passed. The returned record's data is a view
 * into `bytes`.
 */
export function decodeFrame(bytes: Uint8Array, offset: number, blockSize: number): DecodeResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const available = buf.length - offset;
  if (available < FRAME_HEADER_BYTES) return { ok: false, reason: "torn", detail: `${available} bytes left, a header needs ${FRAME_HEADER_BYTES}` };
  const frameBytes = buf.readUInt32LE(offset);
  if (frameBytes < FRAME_HEADER_BYTES || frameBytes > frameBytesMax(blockSize)) {
    return { ok: false, reason: "corrupt", detail: `frame length ${frameBytes} is out of bounds` };
  }
  if (available < frameBytes) return { ok: false, reason: "torn", detail: `${available} bytes left, the frame needs ${frameBytes}` };
  const crc = buf.readUInt32LE(offset + 4);
  const actual = crc32(new Uint8Array(buf.buffer, buf.byteOffset + offset + 8, frameBytes - 8));
  if (crc !== actual) return { ok: false, reason: "corrupt", detail: `checksum ${hex(actual)} does not match ${hex(crc)}` };
  const epoch = buf.readDoubleLE(offset + 8);
  const lsn = buf.readDoubleLE(offset + 16);
  const kind = KINDS[buf.readUInt8(offset + 24)];
  const cidBytes = buf.readUInt8(offset + 25);
  const reserved = buf.readUInt16LE(offset + 26);
  const block = buf.readUInt32LE(offset + 28);
  const blockCount = buf.readUInt32LE(offset + 32);
  const clientSeq = buf.readDoubleLE(offset + 36);
  const payloadBytes = buf.readUInt32LE(offset + 44);
  const bad =
    !isCount(epoch) || !isCount(lsn) || !isCount(clientSeq) ? "a number field is not a non-negative integer"
    : kind === undefined ? "unknown record kind"
    : reserved !== 0 ? "reserved bits are set"
    : FRAME_HEADER_BYTES + cidBytes + payloadBytes !== frameBytes ? "frame length does not match its parts"
    : kind === "config" && (payloadBytes < 1 || payloadBytes > CONFIG_BYTES_MAX || blockCount !== 0) ? "a config record's payload does not match it"
    : kind !== "config" && payloadBytes !== (kind === "write" ? blockCount * blockSize : 0) ? "payload length does not match the record"
    : null;
  if (bad !== null) return { ok: false, reason: "corrupt", detail: bad };
  const cidAt = offset + FRAME_HEADER_BYTES;
  const payloadAt = cidAt + cidBytes;
  return {
    ok: true,
    frameBytes,
    record: {
      epoch: asEpoch(epoch),
      lsn: asLsn(lsn),
      kind: kind as RecordKind,
      block: asBlock(block),
      blockCount,
      data: kind === "write" || kind === "config" ? buf.subarray(payloadAt, payloadAt + payloadBytes) : null,
      clientId: asClientId(buf.toString("utf8", cidAt, payloadAt)),
      clientSeq,
    },
  };
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

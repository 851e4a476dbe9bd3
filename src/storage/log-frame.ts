/**
 * The write-ahead log's record frame. Little-endian, fixed header:
 *
 *   0  u32 frameBytes   whole frame: header + clientId + payload
 *   4  u32 crc          CRC-32 of bytes 8 .. frameBytes
 *   8  f64 epoch        (integers up to 2^53, as everywhere in replivol)
 *  16  f64 lsn
 *  24  u8  kind         0 write, 1 zeroes, 2 trim, 3 mountStart
 *  25  u8  clientIdBytes
 *  26  u16 reserved, 0
 *  28  u32 block
 *  32  u32 blockCount
 *  36  f64 clientSeq
 *  44  u32 payloadBytes blockCount * blockSize for a write, else 0
 *  48  clientId (UTF-8), then payload
 *
 * The length comes first so a reader can step over frames, and is covered by
 * the consistency checks (frameBytes must equal the sum of its parts) rather
 * than by the CRC, which covers everything after it.
 */
import { asBlock, asClientId, asEpoch, asLsn, type LogRecord, type RecordKind } from "../core/types.js";
import { limits } from "../core/limits.js";
import { crc32 } from "./crc32.js";

export const FRAME_HEADER_BYTES = 48;
export const CLIENT_ID_BYTES_MAX = 255;

const KINDS: readonly RecordKind[] = ["write", "zeroes", "trim", "mountStart"];

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
 * Consecutive frames then sit next to each other, so a group is written
 * with few iovecs. A slab lives while any frame in it is referenced.
 */
export class FrameArena {
  private slab: Buffer = Buffer.alloc(0);
  private used = 0;
  constructor(private readonly slabBytes = 1024 * 1024) {}

  alloc(bytes: number): Buffer {
    if (bytes > this.slabBytes / 4) return Buffer.allocUnsafeSlow(bytes);
    if (this.slab.length - this.used < bytes) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + bytes);
    this.used += bytes;
    return out;
  }
}

/** Joins buffers that are adjacent views of the same memory, so a group needs fewer iovecs. */
export function coalesceAdjacent(buffers: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let last: Buffer | undefined;
  for (const b of buffers) {
    if (last !== undefined && last.buffer === b.buffer && last.byteOffset + last.length === b.byteOffset) {
      last = Buffer.from(last.buffer, last.byteOffset, last.length + b.length);
      out[out.length - 1] = last;
    } else {
      out.push(b);
      last = b;
    }
  }
  return out;
}

/**
 * Encodes records into one buffer (the one copy of their payloads), and
 * returns records whose `data` are views into it, so the caller may reuse its
 * own buffers as soon as appendLog returned.
 */
export function encodeFrames(records: readonly LogRecord[], arena: FrameArena): { bytes: Buffer; records: LogRecord[]; frameOffsets: number[] } {
  let total = 0;
  for (const r of records) total += frameBytesOf(r);
  const bytes = arena.alloc(total);
  const owned: LogRecord[] = [];
  const frameOffsets: number[] = [];
  let at = 0;
  for (const r of records) {
    const start = at;
    frameOffsets.push(start);
    const cidBytes = bytes.write(r.clientId, start + FRAME_HEADER_BYTES, "utf8");
    const payloadBytes = r.data?.length ?? 0;
    const frameBytes = FRAME_HEADER_BYTES + cidBytes + payloadBytes;
    bytes.writeUInt32LE(frameBytes, start);
    bytes.writeDoubleLE(r.epoch, start + 8);
    bytes.writeDoubleLE(r.lsn, start + 16);
    bytes.writeUInt8(kindCode(r.kind), start + 24);
    bytes.writeUInt8(cidBytes, start + 25);
    bytes.writeUInt16LE(0, start + 26);
    bytes.writeUInt32LE(r.block, start + 28);
    bytes.writeUInt32LE(r.blockCount, start + 32);
    bytes.writeDoubleLE(r.clientSeq, start + 36);
    bytes.writeUInt32LE(payloadBytes, start + 44);
    const payloadAt = start + FRAME_HEADER_BYTES + cidBytes;
    let data: Uint8Array | null = null;
    if (r.data !== null) {
      bytes.set(r.data, payloadAt);
      data = bytes.subarray(payloadAt, payloadAt + payloadBytes);
    }
    bytes.writeUInt32LE(crc32(bytes.subarray(start + 8, start + frameBytes)), start + 4);
    owned.push({ epoch: r.epoch, lsn: r.lsn, kind: r.kind, block: r.block, blockCount: r.blockCount, data, clientId: r.clientId, clientSeq: r.clientSeq });
    at = start + frameBytes;
  }
  return { bytes, records: owned, frameOffsets };
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
  const actual = crc32(buf.subarray(offset + 8, offset + frameBytes));
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
    : payloadBytes !== (kind === "write" ? blockCount * blockSize : 0) ? "payload length does not match the record"
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
      data: kind === "write" ? buf.subarray(payloadAt, payloadAt + payloadBytes) : null,
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

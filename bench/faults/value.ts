/**
 * Self-describing block contents for the fault-injection benchmarks.
 *
 * Every value a benchmark client writes names its block, its writer, the
 * writer's sequence number and the writer's mount epoch, so any block read
 * back can be attributed to exactly one write (values are unique), and a
 * block that is torn (half of two writes), mixed, bit-flipped or written to
 * the wrong place fails to decode instead of passing for a real value.
 *
 * Layout (little-endian), blockSize bytes:
 *
 *   0   u32  magic "RVB1"
 *   4   u32  block
 *   8   u64  seq
 *   16  u64  epoch
 *   24  u8   writer length (1..32)
 *   25  32 B writer, ASCII, zero-padded
 *   57  3 B  zero
 *   60  ...  fill: xorshift32 stream seeded by the CRC-32 of bytes 0..60
 *   -4  u32  CRC-32 of every byte before it
 *
 * The fill is derived from the header so that every byte of the block is
 * predictable: a torn write shows up as the first byte that differs from
 * what the header promises, which the decoder reports.
 */
import { crc32 } from "../../src/storage/crc32.js";

export interface BlockValue {
  readonly block: number;
  /** The client process name ("c1"...), 1 to 32 printable ASCII characters. */
  readonly writer: string;
  /** Unique per writer, increasing. */
  readonly seq: number;
  /** The writer's mount epoch when it issued the write. */
  readonly epoch: number;
}

export type Decoded =
  | { readonly kind: "zero" }
  | { readonly kind: "value"; readonly value: BlockValue }
  | { readonly kind: "undecodable"; readonly reason: string };

const MAGIC = 0x31425652; // "RVB1" read as a little-endian u32
export const VALUE_HEADER_BYTES = 60;
export const VALUE_WRITER_CHARS_MAX = 32;
const CRC_BYTES = 4;
/** The smallest block that holds the header, some fill and the checksum. */
export const VALUE_BLOCK_BYTES_MIN = 128;

function assertBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < VALUE_BLOCK_BYTES_MIN || blockSize % 4 !== 0) {
    throw new RangeError(`Cannot use a block size of ${blockSize}: it must be a multiple of 4 and at least ${VALUE_BLOCK_BYTES_MIN}`);
  }
}

function isWriterName(s: string): boolean {
  if (s.length < 1 || s.length > VALUE_WRITER_CHARS_MAX) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Writes the fill after the header into `out` (whose header bytes are set). */
function writeFill(out: Uint8Array, view: DataView): void {
  let x = crc32(out.subarray(0, VALUE_HEADER_BYTES)) || 0x9e3779b9; // xorshift32 must not start at 0
  const end = out.length - CRC_BYTES;
  for (let i = VALUE_HEADER_BYTES; i < end; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(i, x >>> 0, true);
  }
}

/** The block's bytes for `v`: header, the fill it implies, and a CRC-32 over both. */
export function encodeValue(v: BlockValue, blockSize: number): Uint8Array {
  assertBlockSize(blockSize);
  if (!Number.isSafeInteger(v.block) || v.block < 0 || v.block > 0xffff_ffff) throw new RangeError(`Cannot encode a value for block ${v.block}: not a block number`);
  if (!Number.isSafeInteger(v.seq) || v.seq < 0) throw new RangeError(`Cannot encode seq ${v.seq}: not a non-negative integer`);
  if (!Number.isSafeInteger(v.epoch) || v.epoch < 0) throw new RangeError(`Cannot encode epoch ${v.epoch}: not a non-negative integer`);
  if (!isWriterName(v.writer)) throw new RangeError(`Cannot encode writer ${JSON.stringify(v.writer)}: it must be 1 to ${VALUE_WRITER_CHARS_MAX} printable ASCII characters`);
  const out = new Uint8Array(blockSize);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, v.block, true);
  view.setBigUint64(8, BigInt(v.seq), true);
  view.setBigUint64(16, BigInt(v.epoch), true);
  out[24] = v.writer.length;
  for (let i = 0; i < v.writer.length; i++) out[25 + i] = v.writer.charCodeAt(i);
  writeFill(out, view);
  view.setUint32(blockSize - CRC_BYTES, crc32(out.subarray(0, blockSize - CRC_BYTES)), true);
  return out;
}

function undecodable(reason: string): Decoded {
  return { kind: "undecodable", reason };
}

function isAllZero(bytes: Uint8Array): boolean {
  // Word at a time when aligned: a 4 KiB read is checked on every read of a run.
  if (bytes.byteOffset % 4 === 0 && bytes.length % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * What a block read at `expectedBlock` holds: zeros (never written, or
 * trimmed), one writer's value, or something no writer wrote, with why.
 */
export function decodeValue(bytes: Uint8Array, expectedBlock: number): Decoded {
  if (bytes.length < VALUE_BLOCK_BYTES_MIN || bytes.length % 4 !== 0) return undecodable(`block ${expectedBlock} read back ${bytes.length} bytes, not a whole block`);
  if (isAllZero(bytes)) return { kind: "zero" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crcAt = bytes.length - CRC_BYTES;
  const stored = view.getUint32(crcAt, true);
  const magic = view.getUint32(0, true);
  if (magic !== MAGIC) return undecodable(`block ${expectedBlock} has no value header (magic 0x${magic.toString(16).padStart(8, "0")})`);
  const writerLength = bytes[24] ?? 0;
  const block = view.getUint32(4, true);
  if (crc32(bytes.subarray(0, crcAt)) !== stored) {
    // Say where the block stops matching its own header: a torn or mixed
    // write shows as a boundary (often a sector or page) past the header.
    const expected = new Uint8Array(bytes.length);
    expected.set(bytes.subarray(0, VALUE_HEADER_BYTES));
    writeFill(expected, new DataView(expected.buffer));
    let at = -1;
    for (let i = VALUE_HEADER_BYTES; i < crcAt; i++) {
      if (bytes[i] !== expected[i]) {
        at = i;
        break;
      }
    }
    const where = at < 0 ? "the header or the checksum itself" : `byte ${at}`;
    return undecodable(`block ${expectedBlock} fails its checksum (torn, mixed or corrupt): it first differs from its header's fill at ${where}`);
  }
  if (writerLength < 1 || writerLength > VALUE_WRITER_CHARS_MAX) return undecodable(`block ${expectedBlock} has a writer name of ${writerLength} bytes`);
  let writer = "";
  for (let i = 0; i < writerLength; i++) writer += String.fromCharCode(bytes[25 + i] ?? 0);
  const seq = view.getBigUint64(8, true);
  const epoch = view.getBigUint64(16, true);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER) || epoch > BigInt(Number.MAX_SAFE_INTEGER)) return undecodable(`block ${expectedBlock} has a seq or epoch past 2^53`);
  if (!isWriterName(writer)) return undecodable(`block ${expectedBlock} has a writer name that is not printable ASCII`);
  if (block !== expectedBlock) {
    return undecodable(`block ${expectedBlock} holds the value ${writer}#${seq} written for block ${block} (a misdirected write or read)`);
  }
  return { kind: "value", value: { block, writer, seq: Number(seq), epoch: Number(epoch) } };
}

/** The unique id of a value: a writer never reuses a seq. */
export function valueKey(v: Pick<BlockValue, "writer" | "seq">): string {
  return `${v.writer}#${v.seq}`;
}

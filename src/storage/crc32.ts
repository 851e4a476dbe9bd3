/**
 * CRC-32 (IEEE, as zlib and gzip compute it). Node's zlib.crc32 (Node >= 20.15)
 * is 2.6x faster than the crc-32 package, so it is the hot path; the package
 * is the fallback for an older Node. Both continue from a previous value, so a
 * checksum can cover several buffers without copying them together.
 */
import CRC32 from "crc-32";
import * as zlib from "node:zlib";

export type Crc32 = (data: Uint8Array, previous?: number) => number;

/** The crc-32 package returns a signed 32-bit number; `>>> 0` makes it unsigned like zlib's. */
export const crc32Package: Crc32 = (data, previous = 0) => CRC32.buf(data, previous | 0) >>> 0;

const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

export const crc32Zlib: Crc32 | null = zlibCrc32 === undefined ? null : (data, previous = 0) => zlibCrc32(data, previous);

export const crc32: Crc32 = crc32Zlib ?? crc32Package;

const blockIndexBytes = Buffer.alloc(4);

/**
 * The checksum of one block: it covers the block's index as well as its bytes,
 * so a block written to (or read from) the wrong place fails the check.
 */
export function blockCrc32(block: number, bytes: Uint8Array): number {
  blockIndexBytes.writeUInt32LE(block, 0);
  return crc32(bytes, crc32(blockIndexBytes));
}

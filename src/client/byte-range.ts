/** Splitting byte ranges into requests the primary accepts. */
import { assert } from "../core/assert.js";

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * `[offset, offset + length)` as consecutive ranges that each touch at most
 * `blocksMax` blocks; every cut falls on a block boundary, so only the first
 * and last range can be partial blocks.
 */
export function splitByteRange(offset: number, length: number, blockSize: number, blocksMax: number): ByteRange[] {
  assert(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0, "a byte range is whole and non-negative");
  assert(blockSize > 0 && blocksMax > 0, "blocks have a size and a request holds at least one");
  const ranges: ByteRange[] = [];
  const end = offset + length;
  let at = offset;
  while (at < end) {
    const cut = Math.min(end, (Math.floor(at / blockSize) + blocksMax) * blockSize);
    ranges.push({ offset: at, length: cut - at });
    at = cut;
  }
  return ranges;
}

/** Blocks that a byte range touches. */
export function blocksTouched(r: ByteRange, blockSize: number): number {
  if (r.length === 0) return 0;
  return Math.floor((r.offset + r.length - 1) / blockSize) - Math.floor(r.offset / blockSize) + 1;
}

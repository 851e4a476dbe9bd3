/**
 * Which blocks of a region a region copy carries (resync copies only the
 * blocks written since the target's version of the region): a bitmap, bit i
 * (byte i >> 3, bit i & 7) for block i of the region. `null` where a mask is
 * optional means every block of the region.
 */

/** A mask of `blocks` blocks, none set. */
export function emptyBlockMask(blocks: number): Uint8Array {
  return new Uint8Array(Math.ceil(blocks / 8));
}

export function maskHas(mask: Uint8Array, i: number): boolean {
  return ((mask[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

export function maskSet(mask: Uint8Array, i: number): void {
  mask[i >> 3] = (mask[i >> 3] ?? 0) | (1 << (i & 7));
}

/** Blocks set among the first `blocks` (every one when the mask is null). */
export function maskCount(mask: Uint8Array | null, blocks: number): number {
  if (mask === null) return blocks;
  let n = 0;
  for (let i = 0; i < blocks; i++) if (maskHas(mask, i)) n++;
  return n;
}

/** True if `mask` fits a region of `blocks` blocks: its length, and no bit past the last block. */
export function maskFits(mask: Uint8Array, blocks: number): boolean {
  if (mask.length !== Math.ceil(blocks / 8)) return false;
  for (let i = blocks; i < mask.length * 8; i++) if (maskHas(mask, i)) return false;
  return true;
}

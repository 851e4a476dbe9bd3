/**
 * Client I/O comes as byte offset and length; the core takes whole blocks.
 * This maps one to the other and checks the bounds, with no I/O.
 */
import { VolumeError } from "../core/errors.js";
import { limits } from "../core/limits.js";

export interface BlockSpan {
  /** First block the bytes touch. */
  readonly block: number;
  readonly blockCount: number;
  /** Where the bytes start inside the first block. */
  readonly headBytes: number;
  /** Bytes past the end of the range in the last block. */
  readonly tailBytes: number;
}

export function blockSpan(offset: number, length: number, blockSize: number): BlockSpan {
  const block = Math.floor(offset / blockSize);
  const end = offset + length;
  const endBlock = Math.ceil(end / blockSize);
  return { block, blockCount: endBlock - block, headBytes: offset - block * blockSize, tailBytes: endBlock * blockSize - end };
}

export function isAligned(span: BlockSpan): boolean {
  return span.headBytes === 0 && span.tailBytes === 0;
}

/**
 * Checks a byte range of a volume of `blockCount` blocks: INVALID_ARGUMENT
 * for a bad or oversized range (more than limits.requestBlocksMax blocks),
 * OUT_OF_RANGE for one that ends past the volume.
 */
export function checkByteRange(offset: number, length: number, blockSize: number, blockCount: number, what: string): BlockSpan {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 1) {
    throw new VolumeError("INVALID_ARGUMENT", `Bad ${what} of ${length} bytes at offset ${offset}: the length must be at least 1`);
  }
  const span = blockSpan(offset, length, blockSize);
  if (span.blockCount > limits.requestBlocksMax) {
    throw new VolumeError(
      "INVALID_ARGUMENT",
      `Bad ${what} of ${length} bytes at offset ${offset}: it spans ${span.blockCount} blocks, at most ${limits.requestBlocksMax} (${limits.requestBlocksMax * blockSize} bytes) per request`,
    );
  }
  const volumeBytes = blockCount * blockSize;
  if (offset + length > volumeBytes) {
    throw new VolumeError("OUT_OF_RANGE", `Cannot ${what} bytes ${offset}..${offset + length - 1}: the volume ends at byte ${volumeBytes}`);
  }
  return span;
}

/**
 * The whole blocks of a write whose range is not block-aligned: the edge
 * blocks as read (`head`, `tail`, whichever the range cuts), with `bytes`
 * (or zeros, when null) laid over them.
 */
export function mergePartialWrite(span: BlockSpan, blockSize: number, bytes: Uint8Array | null, length: number, head: Uint8Array | null, tail: Uint8Array | null): Uint8Array {
  const out = Buffer.alloc(span.blockCount * blockSize);
  if (head !== null) out.set(head.subarray(0, blockSize), 0);
  if (tail !== null) out.set(tail.subarray(0, blockSize), (span.blockCount - 1) * blockSize);
  if (bytes !== null) out.set(bytes.subarray(0, length), span.headBytes);
  else out.fill(0, span.headBytes, span.headBytes + length);
  return out;
}

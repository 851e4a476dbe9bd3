/**
 * Large Buffers used again instead of dropped: serving 1 MiB reads, a
 * primary made three 1 MiB buffers per read (the read's, its reply frame
 * and grpc-js's copy of the frame), and V8 ran a full collection about ten
 * times a second to keep up (a quarter of the primary's time). The first
 * two now come from pools. A holder gives a buffer back when nothing reads or writes
 * it any more; one never given back is collected as any other.
 *
 * Buffers handed out are not zeroed: they may hold an earlier user's bytes,
 * so a taker must set every byte it hands on (as Buffer.allocUnsafe).
 */
import { assert } from "../core/assert.js";

/** Capacities are multiples of this: buffers of nearly the same size (1 MiB reads, frames of 1 MiB of data and a header) share a size class. */
const GRAIN_BYTES = 64 * 1024;

export class BufferPool {
  /** Free buffers by capacity. */
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  /** The memory of every buffer handed out and not given back yet. */
  private readonly lent = new WeakSet<ArrayBufferLike>();

  /**
   * @param freeBytesMax bytes of free buffers kept; beyond, given-back
   *   buffers are dropped (this bounds what the pool adds to the process).
   */
  constructor(private readonly freeBytesMax: number) {
    assert(freeBytesMax >= 0, "a pool keeps zero or more free bytes");
  }

  /** A buffer of `bytes` (not zeroed), a view of a pooled one of GRAIN_BYTES multiples. */
  take(bytes: number): Buffer {
    const capacity = Math.max(GRAIN_BYTES, Math.ceil(bytes / GRAIN_BYTES) * GRAIN_BYTES);
    let buffer = this.free.get(capacity)?.pop();
    if (buffer === undefined) buffer = Buffer.allocUnsafeSlow(capacity);
    else this.freeBytes -= capacity;
    this.lent.add(buffer.buffer);
    return buffer.subarray(0, bytes);
  }

  /**
   * Gives back the buffer `view` is a view of, if this pool lent it and has
   * not had it back since; anything else is left alone. The caller and
   * everyone it handed the buffer to must be done with it.
   */
  give(view: Uint8Array): void {
    const memory = view.buffer;
    if (!this.lent.delete(memory)) return;
    const capacity = memory.byteLength;
    if (this.freeBytes + capacity > this.freeBytesMax) return;
    let list = this.free.get(capacity);
    if (list === undefined) {
      list = [];
      this.free.set(capacity, list);
    }
    list.push(Buffer.from(memory, 0, capacity));
    this.freeBytes += capacity;
  }

  /** Bytes of free buffers held (for tests and status). */
  heldFreeBytes(): number {
    return this.freeBytes;
  }
}

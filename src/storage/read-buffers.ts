/**
 * The buffers reads are served into, for every volume of the process.
 *
 * Small reads (up to READ_SLAB_TAKE_MAX) are carved from a shared slab, as
 * Node pools its small Buffers: serving 4 KiB reads at 15-20k/s, an
 * ArrayBuffer of its own for each (zero-filled, then read over) was 6% of a
 * primary's CPU. A slab lives until every read carved from it is dropped.
 *
 * Larger reads take a buffer from a BufferPool, and whoever sends the read
 * on (the node's Io stream, once the bytes are copied into its reply frame)
 * gives it back with `give`; a read not given back is collected.
 *
 * None of these buffers is zeroed: the store sets every byte of a read
 * (test/storage/read-buffers.test.ts).
 */
import { BufferPool } from "./buffer-pool.js";

/** Bytes of one slab of small reads' buffers. */
const READ_SLAB_BYTES = 256 * 1024;
/** Reads up to this size take their buffer from a slab. */
const READ_SLAB_TAKE_MAX = 16 * 1024;
/** Free large-read buffers kept for reuse: eight 1 MiB reads in flight, twice over. */
const READ_POOL_FREE_BYTES_MAX = 16 * 1024 * 1024;

class ReadBuffers {
  private slab = Buffer.allocUnsafeSlow(0);
  private at = 0;
  private readonly large = new BufferPool(READ_POOL_FREE_BYTES_MAX);

  /** A buffer for a read of `bytes`, not zeroed. */
  take(bytes: number): Buffer {
    if (bytes > READ_SLAB_TAKE_MAX) return this.large.take(bytes);
    if (this.at + bytes > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(READ_SLAB_BYTES);
      this.at = 0;
    }
    const out = this.slab.subarray(this.at, this.at + bytes);
    this.at += bytes;
    return out;
  }

  /**
   * Gives back a read's buffer (or a view of it) once nothing uses it: the
   * next large read may be served into it. Slab views and buffers that are
   * not a read's are left alone.
   */
  give(data: Uint8Array): void {
    this.large.give(data);
  }
}

/** One for the process: every volume's reads share it. */
export const readBuffers = new ReadBuffers();

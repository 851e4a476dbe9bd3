/**
 * The baseline of the storage benchmark (bench/storage.ts), in a module of
 * its own so that bench/storage-profile.ts measures the very same code.
 */
import type * as fs from "node:fs/promises";

/**
 * The baseline: plain Node group commit on one file, batched exactly the way
 * DiskReplicaStore batches its log (flushLog / writeGroup), minus everything
 * that makes it a log (no frame header, no CRC, no record bookkeeping, no
 * validation, no ordering checks):
 *
 * - append() copies the payload into a 1 MiB slab (the one copy the store
 *   makes when it frames a record into its arena), queues it, and, unless a
 *   flush is already under way, schedules one with setImmediate: the writers
 *   whose appends just completed append again in the current turn's
 *   microtasks, so they all join the next group (as in the store's kickLog);
 * - a flush takes everything queued, writes it with ONE writev at the end of
 *   the file (adjacent slab views joined, so normally one contiguous iovec;
 *   two when the group straddles a slab boundary), then ONE fdatasync, then
 *   resolves the whole group through ONE shared promise; if appends queued
 *   meanwhile it starts the next group at once, else it stops and the next
 *   append schedules the next flush on setImmediate again;
 * - the file is opened "w+" (empty) and grows, as a log segment does.
 *
 * It is the leanest form of the store's commit discipline we know how to
 * write in Node, so store/baseline is the cost of the store's own work.
 */
export class PlainGroupCommit {
  private static readonly SLAB = 1024 * 1024;
  private slab = Buffer.allocUnsafeSlow(PlainGroupCommit.SLAB);
  private slabUsed = 0;
  private queue: Buffer[] = [];
  private group: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private flushing = false;
  private offset = 0;
  constructor(private readonly handle: Pick<fs.FileHandle, "writev" | "datasync">) {}

  append(payload: Uint8Array): Promise<void> {
    const n = payload.length;
    let copy: Buffer;
    if (n > PlainGroupCommit.SLAB / 4) {
      copy = Buffer.allocUnsafeSlow(n);
    } else {
      if (PlainGroupCommit.SLAB - this.slabUsed < n) {
        this.slab = Buffer.allocUnsafeSlow(PlainGroupCommit.SLAB);
        this.slabUsed = 0;
      }
      copy = this.slab.subarray(this.slabUsed, this.slabUsed + n);
      this.slabUsed += n;
    }
    copy.set(payload);
    this.queue.push(copy);
    if (this.group === null) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.group = { promise, resolve, reject };
    }
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => void this.flush());
    }
    return this.group.promise;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const buffers = this.queue;
      const group = this.group;
      this.queue = [];
      this.group = null;
      if (group === null) throw new Error("a queued append has a group");
      try {
        const iov: Buffer[] = [];
        let total = 0;
        for (const b of buffers) {
          total += b.length;
          const last = iov[iov.length - 1];
          if (last !== undefined && last.buffer === b.buffer && last.byteOffset + last.length === b.byteOffset) {
            iov[iov.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + b.length);
          } else {
            iov.push(b);
          }
        }
        const { bytesWritten } = await this.handle.writev(iov, this.offset);
        if (bytesWritten !== total) throw new Error(`short write: ${bytesWritten} of ${total} bytes`);
        this.offset += bytesWritten;
        await this.handle.datasync();
        group.resolve();
      } catch (err) {
        group.reject(err);
      }
    }
    this.flushing = false;
  }
}


/**
 * VolumeDisk in memory, with a crash that behaves like a power cut: every
 * write not yet covered by datasync() and every directory change not yet
 * covered by syncDir() is lost. The in-memory replica store and crash tests
 * use it; the simulator can too.
 */
import type { DiskFile, VolumeDisk } from "./volume-disk.js";

interface Inode {
  /** What a read sees now. */
  current: Buffer;
  currentLength: number;
  /** What survives a crash. */
  durable: Buffer;
  durableLength: number;
}

function grow(buf: Buffer, length: number): Buffer {
  if (length <= buf.length) return buf;
  const bigger = Buffer.alloc(Math.max(length, buf.length * 2, 4096));
  buf.copy(bigger);
  return bigger;
}

class MemoryDiskFile implements DiskFile {
  private closed = false;
  constructor(
    readonly name: string,
    private readonly inode: Inode,
    readonly syncWrites: boolean,
  ) {}

  private check(): void {
    if (this.closed) throw new Error(`File ${this.name} is closed`);
  }

  read(buf: Uint8Array, position: number): Promise<number> {
    this.check();
    const n = Math.max(0, Math.min(buf.length, this.inode.currentLength - position));
    if (n > 0) buf.set(this.inode.current.subarray(position, position + n));
    return Promise.resolve(n);
  }

  writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    this.writevSync(buffers, position);
    return Promise.resolve();
  }

  writevSync(buffers: readonly Uint8Array[], position: number): void {
    this.check();
    let total = 0;
    for (const b of buffers) total += b.length;
    const end = position + total;
    this.inode.current = grow(this.inode.current, end);
    let at = position;
    for (const b of buffers) {
      this.inode.current.set(b, at);
      at += b.length;
    }
    this.inode.currentLength = Math.max(this.inode.currentLength, end);
    if (this.syncWrites) this.makeDurable();
  }

  datasync(): Promise<void> {
    this.check();
    this.makeDurable();
    return Promise.resolve();
  }

  private makeDurable(): void {
    const ino = this.inode;
    ino.durable = Buffer.from(ino.current.subarray(0, ino.currentLength));
    ino.durableLength = ino.currentLength;
  }

  truncate(length: number): Promise<void> {
    this.check();
    const ino = this.inode;
    ino.current = grow(ino.current, length);
    if (length < ino.currentLength) ino.current.fill(0, length, ino.currentLength);
    ino.currentLength = length;
    return Promise.resolve();
  }

  size(): Promise<number> {
    this.check();
    return Promise.resolve(this.inode.currentLength);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

export class MemoryVolumeDisk implements VolumeDisk {
  private current = new Map<string, Inode>();
  private durable = new Map<string, Inode>();
  open(name: string, create: boolean, syncWrites = false): Promise<DiskFile | null> {
    let inode = this.current.get(name);
    if (inode === undefined) {
      if (!create) return Promise.resolve(null);
      inode = { current: Buffer.alloc(0), currentLength: 0, durable: Buffer.alloc(0), durableLength: 0 };
      this.current.set(name, inode);
    }
    return Promise.resolve(new MemoryDiskFile(name, inode, syncWrites));
  }

  list(): Promise<string[]> {
    return Promise.resolve([...this.current.keys()]);
  }

  unlink(name: string): Promise<void> {
    if (!this.current.delete(name)) return Promise.reject(enoent("unlink", name));
    return Promise.resolve();
  }

  rename(from: string, to: string): Promise<void> {
    const inode = this.current.get(from);
    if (inode === undefined) return Promise.reject(enoent("rename", from));
    this.current.delete(from);
    this.current.set(to, inode);
    return Promise.resolve();
  }

  syncDir(): Promise<void> {
    this.durable = new Map(this.current);
    return Promise.resolve();
  }

  /**
   * A power cut: unsynced writes and directory changes are lost. Handles
   * opened before keep pointing at inodes that are no longer reachable, so a
   * store that still runs on them cannot change what a reopen sees.
   */
  crash(): void {
    const survivors = new Map<string, Inode>();
    for (const [name, inode] of this.durable) {
      survivors.set(name, {
        current: Buffer.from(inode.durable.subarray(0, inode.durableLength)),
        currentLength: inode.durableLength,
        durable: Buffer.from(inode.durable.subarray(0, inode.durableLength)),
        durableLength: inode.durableLength,
      });
    }
    this.current = survivors;
    this.durable = new Map(survivors);
  }

  /** TEST HOOK: the bytes a reader sees now, for tests that corrupt files on purpose. */
  fileBytesForTests(name: string): Buffer | null {
    const inode = this.current.get(name);
    return inode === undefined ? null : inode.current.subarray(0, inode.currentLength);
  }
}

function enoent(syscall: string, name: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`ENOENT: no such file or directory, ${syscall} '${name}'`);
  err.code = "ENOENT";
  return err;
}

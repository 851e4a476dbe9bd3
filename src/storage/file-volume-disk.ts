/** VolumeDisk on a real directory, through Node's async fs (FileHandle, positional I/O). */
import { constants, writevSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { DiskFile, VolumeDisk } from "./volume-disk.js";

class FileDiskFile implements DiskFile {
  constructor(
    readonly name: string,
    private readonly handle: fs.FileHandle,
    readonly syncWrites: boolean,
  ) {}

  async read(buf: Uint8Array, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buf, 0, buf.length, position);
    return bytesRead;
  }

  async writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    let total = 0;
    for (const b of buffers) total += b.length;
    let { bytesWritten } = await this.handle.writev(buffers, position);
    // Short writes are rare (a full disk reports ENOSPC instead), but then the rest is written from where it stopped.
    while (bytesWritten < total) {
      const rest = remainder(buffers, bytesWritten);
      const r = await this.handle.writev(rest, position + bytesWritten);
      if (r.bytesWritten === 0) throw new Error(`Short write to ${this.name}: ${bytesWritten} of ${total} bytes`);
      bytesWritten += r.bytesWritten;
    }
  }

  writevSync(buffers: readonly Uint8Array[], position: number): void {
    let total = 0;
    for (const b of buffers) total += b.length;
    let bytesWritten = writevSync(this.handle.fd, buffers, position);
    while (bytesWritten < total) {
      const n = writevSync(this.handle.fd, remainder(buffers, bytesWritten), position + bytesWritten);
      if (n === 0) throw new Error(`Short write to ${this.name}: ${bytesWritten} of ${total} bytes`);
      bytesWritten += n;
    }
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

function remainder(buffers: readonly Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

export class FileVolumeDisk implements VolumeDisk {
  constructor(readonly dir: string) {}

  private pathOf(name: string): string {
    // Names come from this module's callers, never from outside; still, nothing may leave the directory.
    if (name.includes("/") || name.includes("\\") || name === "." || name === "..") {
      throw new Error(`Refusing file name outside the volume directory: ${name}`);
    }
    return path.join(this.dir, name);
  }

  async open(name: string, create: boolean, syncWrites = false): Promise<DiskFile | null> {
    const flags = constants.O_RDWR | (create ? constants.O_CREAT : 0) | (syncWrites ? constants.O_DSYNC : 0);
    try {
      return new FileDiskFile(name, await fs.open(this.pathOf(name), flags, 0o644), syncWrites);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && !create) return null;
      throw err;
    }
  }

  list(): Promise<string[]> {
    return fs.readdir(this.dir);
  }

  unlink(name: string): Promise<void> {
    return fs.unlink(this.pathOf(name));
  }

  rename(from: string, to: string): Promise<void> {
    return fs.rename(this.pathOf(from), this.pathOf(to));
  }

  async syncDir(): Promise<void> {
    const handle = await fs.open(this.dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

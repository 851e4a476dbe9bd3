/**
 * The files of one volume replica, seen through a narrow seam so the same
 * replica code runs on real files (file-volume-disk.ts) and on an in-memory
 * disk that loses unsynced writes on crash (memory-volume-disk.ts).
 *
 * Semantics both implementations follow: a write is durable only after
 * datasync() of its file returned; creating, renaming and unlinking a file
 * is durable only after syncDir() returned; a rename replaces its target
 * atomically.
 */

export interface DiskFile {
  readonly name: string;
  /** Reads up to buf.length bytes at `position`; returns how many were read (fewer at the end of the file). */
  read(buf: Uint8Array, position: number): Promise<number>;
  /** Writes every byte of every buffer, in order, starting at `position`. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<void>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface VolumeDisk {
  /** Opens a file of this volume's directory, creating it (empty) if `create` and it is missing. Null if missing and not `create`. */
  open(name: string, create: boolean): Promise<DiskFile | null>;
  list(): Promise<string[]>;
  unlink(name: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  syncDir(): Promise<void>;
}

/**
 * TEST HOOK: lets a test make a write or a sync fail (EIO, ENOSPC) as a
 * failing disk would. Returning an Error makes that operation throw it
 * without touching the file. Never set outside tests.
 */
export interface DiskFaultHooksForTests {
  beforeWrite?(file: string, bytes: number): Error | undefined;
  beforeSync?(file: string): Error | undefined;
}

/** An errno-style error, as node:fs throws them. */
export function diskError(code: "EIO" | "ENOSPC", syscall: string, file: string): NodeJS.ErrnoException {
  const message = code === "EIO" ? "i/o error" : "no space left on device";
  const err: NodeJS.ErrnoException = new Error(`${code}: ${message}, ${syscall} '${file}'`);
  err.code = code;
  err.syscall = syscall;
  return err;
}

class FaultInjectingFile implements DiskFile {
  constructor(
    private readonly inner: DiskFile,
    private readonly faults: DiskFaultHooksForTests,
  ) {}
  get name(): string {
    return this.inner.name;
  }
  read(buf: Uint8Array, position: number): Promise<number> {
    return this.inner.read(buf, position);
  }
  async writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    const err = this.faults.beforeWrite?.(this.inner.name, bytes);
    if (err !== undefined) throw err;
    await this.inner.writev(buffers, position);
  }
  async datasync(): Promise<void> {
    const err = this.faults.beforeSync?.(this.inner.name);
    if (err !== undefined) throw err;
    await this.inner.datasync();
  }
  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

class FaultInjectingDisk implements VolumeDisk {
  constructor(
    private readonly inner: VolumeDisk,
    private readonly faults: DiskFaultHooksForTests,
  ) {}
  async open(name: string, create: boolean): Promise<DiskFile | null> {
    const file = await this.inner.open(name, create);
    return file === null ? null : new FaultInjectingFile(file, this.faults);
  }
  list(): Promise<string[]> {
    return this.inner.list();
  }
  unlink(name: string): Promise<void> {
    return this.inner.unlink(name);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  async syncDir(): Promise<void> {
    const err = this.faults.beforeSync?.(".");
    if (err !== undefined) throw err;
    await this.inner.syncDir();
  }
}

export function withFaultHooks(disk: VolumeDisk, faults: DiskFaultHooksForTests | undefined): VolumeDisk {
  return faults === undefined ? disk : new FaultInjectingDisk(disk, faults);
}

/** Reads exactly buf.length bytes or fewer at the end of the file, looping over short reads. */
export async function readFully(file: DiskFile, buf: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const n = await file.read(buf.subarray(done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * The files of one volume replica, seen through a narrow seam so the same
 * replica code runs on real files (file-volume-disk.ts) and on an in-memory
 * disk that loses unsynced writes on crash (memory-volume-disk.ts).
 *
 * Semantics both implementations follow: a write is durable only after
 * datasync() of its file returned, or when it returns on a file opened with
 * `syncWrites` (O_DSYNC: the write and its datasync in one call, so one
 * thread-pool hop instead of two); creating, renaming and unlinking a file
 * is durable only after syncDir() returned; a rename replaces its target
 * atomically.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

export interface DiskFile {
  readonly name: string;
  /** Reads up to buf.length bytes at `position`; returns how many were read (fewer at the end of the file). */
  read(buf: Uint8Array, position: number): Promise<number>;
  /** True if every write is durable when it returns (opened with `syncWrites`). */
  readonly syncWrites: boolean;
  /** Writes every byte of every buffer, in order, starting at `position`. */
  writev(buffers: readonly Uint8Array[], position: number): Promise<void>;
  /**
   * writev() on the calling thread: blocks the event loop until the write
   * (and, with `syncWrites`, its sync) is done. For small log groups only.
   */
  writevSync(buffers: readonly Uint8Array[], position: number): void;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface VolumeDisk {
  /**
   * Opens a file of this volume's directory, creating it (empty) if `create`
   * and it is missing. Null if missing and not `create`. With `syncWrites`,
   * every write is durable when it returns (see DiskFile.syncWrites).
   */
  open(name: string, create: boolean, syncWrites?: boolean): Promise<DiskFile | null>;
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
  get syncWrites(): boolean {
    return this.inner.syncWrites;
  }
  read(buf: Uint8Array, position: number): Promise<number> {
    return this.inner.read(buf, position);
  }
  async writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    this.checkWrite(buffers);
    await this.inner.writev(buffers, position);
  }
  writevSync(buffers: readonly Uint8Array[], position: number): void {
    this.checkWrite(buffers);
    this.inner.writevSync(buffers, position);
  }
  /** A write to a syncWrites file is its sync too, so it fails as either would. */
  private checkWrite(buffers: readonly Uint8Array[]): void {
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    const err = this.faults.beforeWrite?.(this.inner.name, bytes) ?? (this.inner.syncWrites ? this.faults.beforeSync?.(this.inner.name) : undefined);
    if (err !== undefined) throw err;
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
  async open(name: string, create: boolean, syncWrites = false): Promise<DiskFile | null> {
    const file = await this.inner.open(name, create, syncWrites);
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

/** How often a control-file hook looks at its file again. */
const DISK_FAULT_CONTROL_REFRESH_MS = 50;

/**
 * TEST HOOK (REPLIVOL_TEST_ONLY_DISK_FAULTS): faults read from a control
 * file that a test writes while the node runs: "eio" or "enospc" makes
 * every write and sync fail with that error, anything else (or no file)
 * lets them through. Read again at most every 50 ms. Never set outside tests.
 */
export function diskFaultsFromControlFile(controlFile: string): DiskFaultHooksForTests {
  let checkedAtMs = -Infinity;
  let code: "EIO" | "ENOSPC" | null = null;
  const current = (): "EIO" | "ENOSPC" | null => {
    const nowMs = performance.now();
    if (nowMs - checkedAtMs >= DISK_FAULT_CONTROL_REFRESH_MS) {
      checkedAtMs = nowMs;
      let text = "";
      try {
        text = readFileSync(controlFile, "utf8").trim().toLowerCase();
      } catch {
        text = "";
      }
      code = text === "eio" ? "EIO" : text === "enospc" ? "ENOSPC" : null;
    }
    return code;
  };
  return {
    beforeWrite(file) {
      const c = current();
      return c === null ? undefined : diskError(c, "write", file);
    },
    beforeSync(file) {
      const c = current();
      return c === null ? undefined : diskError(c, "fdatasync", file);
    },
  };
}

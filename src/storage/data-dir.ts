/**
 * A node's data directory: `<dataDir>/volumes/<name>/` per volume replica,
 * and one lock for the whole directory. The lock is flock(LOCK_EX|LOCK_NB) on
 * `<dataDir>/volnode.lock`, held for as long as the DataDir is open: a second
 * volnode on the same directory fails at once, and the kernel releases the
 * lock when the holder dies, so a crash never leaves a stale lock behind.
 */
import fsExt from "fs-ext";
import { constants } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { VolumeError } from "../core/errors.js";
import { DiskReplicaStore, checkVolumeName, type ReplicaStoreOptions } from "./disk-replica-store.js";
import { FileVolumeDisk } from "./file-volume-disk.js";

export const LOCK_FILE = "volnode.lock";
const VOLUMES_DIR = "volumes";

export interface DataDir {
  readonly path: string;
  /** Names of the volumes with a replica here. */
  volumeNames(): Promise<string[]>;
  /** Opens (or, with opts.create, creates) the replica of one volume. A volume is open at most once. */
  openVolume(volumeName: string, opts?: ReplicaStoreOptions): Promise<DiskReplicaStore>;
  /** Closes every open volume and releases the lock. */
  close(): Promise<void>;
}

function flockExclusiveNow(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsExt.flock(fd, "exnb", (err) => (err === null ? resolve() : reject(err)));
  });
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function openDataDir(dataDir: string): Promise<DataDir> {
  const root = path.resolve(dataDir);
  await fs.mkdir(path.join(root, VOLUMES_DIR), { recursive: true });
  const lockPath = path.join(root, LOCK_FILE);
  const lock = await fs.open(lockPath, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    await flockExclusiveNow(lock.fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    let holder = "";
    try {
      holder = (await lock.readFile("utf8")).trim();
    } catch {
      // The holder's pid is only for the message.
    }
    await lock.close();
    if (code === "EAGAIN" || code === "EWOULDBLOCK") {
      throw new VolumeError("VOLUME_BUSY", `Data directory ${root} is in use by another volnode${/^\d+$/.test(holder) ? ` (pid ${holder})` : ""}`, { cause: err });
    }
    throw err;
  }
  await lock.truncate(0);
  await lock.write(`${process.pid}\n`, 0);
  return new FileDataDir(root, lock);
}

class FileDataDir implements DataDir {
  private readonly open = new Map<string, DiskReplicaStore>();
  private closed = false;

  constructor(
    readonly path: string,
    private readonly lock: fs.FileHandle,
  ) {}

  private volumeDir(volumeName: string): string {
    checkVolumeName(volumeName);
    return path.join(this.path, VOLUMES_DIR, volumeName);
  }

  async volumeNames(): Promise<string[]> {
    const names = await fs.readdir(path.join(this.path, VOLUMES_DIR));
    const out: string[] = [];
    for (const name of names) {
      try {
        checkVolumeName(name);
        out.push(name);
      } catch {
        // Not a volume of ours (a name we would never create).
      }
    }
    return out.sort();
  }

  async openVolume(volumeName: string, opts: ReplicaStoreOptions = {}): Promise<DiskReplicaStore> {
    if (this.closed) throw new VolumeError("INVALID_ARGUMENT", `Data directory ${this.path} is closed`);
    const dir = this.volumeDir(volumeName);
    if (this.open.has(volumeName)) throw new VolumeError("VOLUME_BUSY", `Volume ${volumeName} is already open in this volnode`);
    if (opts.create !== undefined) {
      try {
        await fs.mkdir(dir);
        await syncDirectory(path.dirname(dir));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    } else {
      try {
        await fs.access(dir);
      } catch {
        throw new VolumeError("NOT_FOUND", `Volume ${volumeName} does not exist in ${this.path}`);
      }
    }
    // Reserve the name across the awaits of opening.
    const placeholder = null as unknown as DiskReplicaStore;
    this.open.set(volumeName, placeholder);
    try {
      const store = await DiskReplicaStore.open(new FileVolumeDisk(dir), volumeName, opts, () => {
        this.open.delete(volumeName);
        return Promise.resolve();
      });
      this.open.set(volumeName, store);
      return store;
    } catch (err) {
      this.open.delete(volumeName);
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      for (const store of [...this.open.values()]) {
        // A volume whose close fails (its disk failed) still must not keep the directory locked.
        await store.close().catch(() => undefined);
      }
    } finally {
      await this.lock.close();
    }
  }
}

/**
 * Opens one volume's replica. Given a path, it takes the data directory's
 * lock for this store alone and releases it on close(); a node holding many
 * volumes opens the DataDir once and passes it.
 */
export async function openFileReplicaStore(dataDir: string | DataDir, volumeName: string, opts: ReplicaStoreOptions = {}): Promise<DiskReplicaStore> {
  if (typeof dataDir !== "string") return dataDir.openVolume(volumeName, opts);
  checkVolumeName(volumeName);
  const dir = await openDataDir(dataDir);
  let store: DiskReplicaStore;
  try {
    store = await dir.openVolume(volumeName, opts);
  } catch (err) {
    await dir.close();
    throw err;
  }
  const close = store.close.bind(store);
  store.close = async () => {
    try {
      await close();
    } finally {
      await dir.close();
    }
  };
  return store;
}

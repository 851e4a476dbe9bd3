/**
 * The in-memory ReplicaStore: the same replica code as the file store, on a
 * MemoryVolumeDisk. crash() is a power cut: whatever was not synced is lost,
 * and the store comes back through the same recovery as after a real crash.
 */
import type { VolumeConfig } from "../core/types.js";
import { DiskReplicaStore, type ReplicaStoreOptions } from "./disk-replica-store.js";
import { MemoryVolumeDisk } from "./memory-volume-disk.js";

export type MemoryReplicaStoreOptions = Omit<ReplicaStoreOptions, "create">;

export interface MemoryReplicaStore {
  readonly store: DiskReplicaStore;
  readonly disk: MemoryVolumeDisk;
  /** Power cut at this instant, then recovery: returns the store as it comes back. The old one is unusable. */
  crash(): Promise<DiskReplicaStore>;
  /** Opens the volume again (after close() or crash()). */
  reopen(): Promise<DiskReplicaStore>;
}

export async function createMemoryReplicaStore(config: VolumeConfig, opts: MemoryReplicaStoreOptions = {}): Promise<MemoryReplicaStore> {
  const disk = new MemoryVolumeDisk();
  const noLock = (): Promise<void> => Promise.resolve();
  const handle = {
    store: await DiskReplicaStore.open(disk, config.name, { ...opts, create: config }, noLock),
    disk,
    async crash(): Promise<DiskReplicaStore> {
      await handle.store.abandon();
      disk.crash();
      return handle.reopen();
    },
    async reopen(): Promise<DiskReplicaStore> {
      handle.store = await DiskReplicaStore.open(disk, config.name, opts, noLock);
      return handle.store;
    },
  };
  return handle;
}

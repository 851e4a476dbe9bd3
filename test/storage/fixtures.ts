/** Records, configurations and stores for the storage tests. */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { asBlock, asClientId, asEpoch, asLsn, asNodeId, type LogRecord, type RecordKind, type VolumeConfig } from "../../src/core/types.js";
import { openDataDir } from "../../src/storage/data-dir.js";
import type { DiskReplicaStore, ReplicaStoreOptions } from "../../src/storage/disk-replica-store.js";
import { createMemoryReplicaStore } from "../../src/storage/memory-replica-store.js";

export const BLOCK_SIZE = 4096;

export function volumeConfig(name = "vol1", blockCount = 64): VolumeConfig {
  return { name, blockSize: BLOCK_SIZE, blockCount, replicas: [asNodeId("n1"), asNodeId("n2"), asNodeId("n3")], configVersion: 1 };
}

/** A block's bytes that name the record and block they came from. */
export function blockBytes(lsn: number, block: number, blockSize = BLOCK_SIZE): Buffer {
  const b = Buffer.alloc(blockSize, (lsn * 7 + block) & 0xff);
  b.writeUInt32LE(lsn, 0);
  b.writeUInt32LE(block, 4);
  return b;
}

export function writeRecord(epoch: number, lsn: number, block: number, blockCount = 1, clientSeq = lsn, clientId = "c1"): LogRecord {
  const data = Buffer.concat(Array.from({ length: blockCount }, (_, i) => blockBytes(lsn, block + i)));
  return { epoch: asEpoch(epoch), lsn: asLsn(lsn), kind: "write", block: asBlock(block), blockCount, data, clientId: asClientId(clientId), clientSeq };
}

export function rangeRecord(kind: Exclude<RecordKind, "write">, epoch: number, lsn: number, block: number, blockCount: number, clientSeq = lsn): LogRecord {
  if (kind === "mountStart") return { epoch: asEpoch(epoch), lsn: asLsn(lsn), kind, block: asBlock(0), blockCount: 0, data: null, clientId: asClientId("c1"), clientSeq: 0 };
  return { epoch: asEpoch(epoch), lsn: asLsn(lsn), kind, block: asBlock(block), blockCount, data: null, clientId: asClientId("c1"), clientSeq };
}

export async function tempDir(prefix = "replivol-storage-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface StoreUnderTest {
  store: DiskReplicaStore;
  /** close() and open again. */
  reopen(): Promise<DiskReplicaStore>;
  /** The process (file) or the machine (memory) dies now; open again. */
  crash(): Promise<DiskReplicaStore>;
  cleanup(): Promise<void>;
}

export type StoreFactory = (config: VolumeConfig, opts?: Omit<ReplicaStoreOptions, "create">) => Promise<StoreUnderTest>;

export const fileStoreFactory: StoreFactory = async (config, opts = {}) => {
  const dir = await tempDir();
  const dataDir = await openDataDir(dir);
  const sut: StoreUnderTest = {
    store: await dataDir.openVolume(config.name, { ...opts, create: config }),
    async reopen() {
      await sut.store.close();
      sut.store = await dataDir.openVolume(config.name, opts);
      return sut.store;
    },
    async crash() {
      await sut.store.abandon();
      sut.store = await dataDir.openVolume(config.name, opts);
      return sut.store;
    },
    async cleanup() {
      await dataDir.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return sut;
};

export const memoryStoreFactory: StoreFactory = async (config, opts = {}) => {
  const mem = await createMemoryReplicaStore(config, opts);
  const sut: StoreUnderTest = {
    store: mem.store,
    async reopen() {
      await sut.store.close();
      sut.store = await mem.reopen();
      return sut.store;
    },
    async crash() {
      sut.store = await mem.crash();
      return sut.store;
    },
    async cleanup() {
      await sut.store.close().catch(() => undefined);
    },
  };
  return sut;
};

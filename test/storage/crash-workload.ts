/**
 * The crash test's workload, shared by the child that writes it and the
 * parent that checks it: record lsn N is a pure function of N, so the parent
 * knows what every acknowledged record and every block must hold.
 */
import { asBlock, asClientId, asEpoch, asLsn, asNodeId, type LogRecord, type RecordKind, type VolumeConfig } from "../../src/core/types.js";
import type { ReplicaStoreOptions } from "../../src/storage/disk-replica-store.js";
import { blockBytes } from "./fixtures.js";

export const CRASH_VOLUME = "crash";
export const CRASH_BLOCK_COUNT = 256;
export const crashConfig: VolumeConfig = { name: CRASH_VOLUME, blockSize: 4096, blockCount: CRASH_BLOCK_COUNT, replicas: [asNodeId("n1")], configVersion: 1 };
/**
 * Small segments and tail, so crashes land in rolls, trims and checkpoints
 * too; and few records held past the applied point, so applies read most
 * records back from the log, and frame slabs are used again.
 */
export const crashStoreOptions: Omit<ReplicaStoreOptions, "create"> = { regionBlocks: 16, logSegmentBytes: 256 * 1024, logRetainedBytesMax: 512 * 1024, logUnappliedHeldBytesMax: 32 * 1024 };

function hash(n: number): number {
  let x = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function crashRecordShape(lsn: number): { kind: Exclude<RecordKind, "mountStart">; block: number; blockCount: number } {
  const h = hash(lsn);
  const kind = h % 16 === 0 ? "zeroes" : h % 16 === 1 ? "trim" : "write";
  return { kind, block: (h >>> 4) % (CRASH_BLOCK_COUNT - 3), blockCount: 1 + ((h >>> 12) % 4) };
}

export function crashRecord(lsn: number): LogRecord {
  const { kind, block, blockCount } = crashRecordShape(lsn);
  const data = kind === "write" ? Buffer.concat(Array.from({ length: blockCount }, (_, i) => blockBytes(lsn, block + i))) : null;
  return { epoch: asEpoch(1), lsn: asLsn(lsn), kind, block: asBlock(block), blockCount, data, clientId: asClientId("crash"), clientSeq: lsn };
}

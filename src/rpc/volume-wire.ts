/**
 * proto/volume.proto messages as proto-loader gives and takes them
 * (camelCase fields, uint64 as number, enums as strings, bytes as Buffer).
 */

export type IoKindWire = "IO_KIND_UNSPECIFIED" | "IO_KIND_READ" | "IO_KIND_WRITE" | "IO_KIND_TRIM" | "IO_KIND_WRITE_ZEROES" | "IO_KIND_FLUSH";

/** An Io request as a client sends it (src/rpc/io-frames.ts frames it). */
export interface IoRequestOut {
  id: number;
  kind: IoKindWire;
  offset: number;
  length: number;
  clientSeq: number;
  data?: Uint8Array;
}

/** An Io request as a node receives it: its data a view into the frame (empty when it has none). */
export interface IoRequestWire extends IoRequestOut {
  data: Buffer;
}

export interface IoBatchOut {
  volume: string;
  clientId: string;
  epoch: number;
  requests: IoRequestOut[];
  readOnly?: boolean;
}

export interface IoBatchWire extends IoBatchOut {
  requests: IoRequestWire[];
}

/** An Io reply as a node sends it. */
export interface IoReplyWire {
  id: number;
  ok: boolean;
  data?: Uint8Array;
  code?: string;
  message?: string;
  epoch: number;
  staleMs?: number;
}

/** An Io reply as a client receives it (every field present; data a view into the frame). */
export interface IoReplyIn {
  id: number;
  ok: boolean;
  data: Buffer;
  code: string;
  message: string;
  epoch: number;
  staleMs: number;
}

export interface IoReplyBatchIn {
  replies: IoReplyIn[];
}

export interface MountRequestWire {
  volume: string;
  clientId: string;
  takeover: boolean;
  readOnly: boolean;
}

export interface MountReplyWire {
  epoch: number;
  blockCount: number;
  blockSize: number;
  primary: string;
}

export interface UnmountRequestWire {
  volume: string;
  clientId: string;
}

export interface ReplicaConfigWire {
  name: string;
  blockCount: number;
  blockSize: number;
  replicas: string[];
  configVersion: number;
  previousReplicas: string[];
  learnerFrom: string;
  learnerTo: string;
}

export interface VersionWire {
  epoch: number;
  lsn: number;
}

export interface FollowerStatusWire {
  node: string;
  matchLsn: number;
  consistent: boolean;
  resyncing: boolean;
  regionsLeft: number;
  regionsCopied: number;
  bytesCopied: number;
  resyncMs: number;
  lastResyncRegions: number;
  lastResyncBytes: number;
  lastResyncMs: number;
}

export interface ReplicaStatusWire {
  volume: string;
  node: string;
  config: ReplicaConfigWire;
  promisedEpoch: number;
  head: VersionWire;
  commitLsn: number;
  appliedLsn: number;
  consistent: boolean;
  unsurePastHead: boolean;
  primaryEpoch: number;
  primaryPhase: string;
  primaryClient: string;
  leaseValid: boolean;
  followers: FollowerStatusWire[];
  diskFailed: boolean;
  scrub: ScrubStatusWire;
  corruptFound: number;
  repairsDone: number;
  repairsFailed: number;
  configCommitted: boolean;
  divergentFound: number;
  regionsDirty: number;
}

export interface ScrubStatusWire {
  active: boolean;
  regionsDone: number;
  regionsTotal: number;
  corruptFound: number;
  passesDone: number;
  lastPassMs: number;
}

export interface NodeStatusReplyWire {
  node: string;
  listen: string;
  uptimeMs: number;
  rssBytes: number;
  volumes: number;
  resyncBytesPerSec: number;
}

/** The metadata entry naming a node that can serve a refused mount (RequestFailure.retryAt). */
export const RETRY_AT_METADATA_KEY = "replivol-retry-at";

/**
 * proto/volume.proto messages as proto-loader gives and takes them
 * (camelCase fields, uint64 as number, enums as strings, bytes as Buffer).
 */

export type IoKindWire = "IO_KIND_UNSPECIFIED" | "IO_KIND_READ" | "IO_KIND_WRITE" | "IO_KIND_TRIM" | "IO_KIND_WRITE_ZEROES" | "IO_KIND_FLUSH";

export interface IoRequestWire {
  id: number;
  kind: IoKindWire;
  offset: number;
  length: number;
  clientSeq: number;
  data: Buffer;
}

export interface IoReplyWire {
  id: number;
  ok: boolean;
  data?: Uint8Array;
  code?: string;
  message?: string;
  epoch: number;
}

export interface IoBatchWire {
  volume: string;
  clientId: string;
  epoch: number;
  requests: IoRequestWire[];
}

export interface IoReplyBatchWire {
  replies: IoReplyWire[];
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
}

export interface NodeStatusReplyWire {
  node: string;
  listen: string;
  uptimeMs: number;
  rssBytes: number;
  volumes: number;
}

/** The metadata entry naming a node that can serve a refused mount (RequestFailure.retryAt). */
export const RETRY_AT_METADATA_KEY = "replivol-retry-at";

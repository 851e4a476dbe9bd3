/**
 * The words of design.md as types. Numbers that are 64-bit on the wire are
 * JavaScript numbers here (exact up to 2^53); they become bigint only at the
 * RPC edge.
 */

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Names a mount; strictly increasing per volume. */
export type Epoch = Brand<number, "Epoch">;
/** Position of a record in a volume's history; increases across epochs. */
export type Lsn = Brand<number, "Lsn">;
export type BlockIndex = Brand<number, "BlockIndex">;
export type NodeId = Brand<string, "NodeId">;
/** Identity of one client library instance; a mount carries it. */
export type ClientId = Brand<string, "ClientId">;
/** Monotonic time as the driver counts it (milliseconds in the daemon). */
export type Ticks = Brand<number, "Ticks">;

export const asEpoch = (n: number): Epoch => n as Epoch;
export const asLsn = (n: number): Lsn => n as Lsn;
export const asBlock = (n: number): BlockIndex => n as BlockIndex;
export const asNodeId = (s: string): NodeId => s as NodeId;
export const asClientId = (s: string): ClientId => s as ClientId;
export const asTicks = (n: number): Ticks => n as Ticks;

/** `(epoch, lsn)`, ordered by epoch, then lsn. */
export interface Version {
  readonly epoch: Epoch;
  readonly lsn: Lsn;
}

export const VERSION_ZERO: Version = { epoch: asEpoch(0), lsn: asLsn(0) };

/**
 * The version of a region whose content is not any prefix of the history:
 * a replica in region resync applied a new record to it before the region
 * was copied. Equal to no real version, so the next resync copies it.
 */
export const REGION_DIRTY: Version = { epoch: asEpoch(-1), lsn: asLsn(-1) };

export function compareVersion(a: Version, b: Version): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  if (a.lsn !== b.lsn) return a.lsn < b.lsn ? -1 : 1;
  return 0;
}

export function versionEquals(a: Version, b: Version): boolean {
  return a.epoch === b.epoch && a.lsn === b.lsn;
}

export function formatVersion(v: Version): string {
  return `${v.epoch}:${v.lsn}`;
}

/** `config` records carry a new configuration of the volume (its replica set) as their data. */
export type RecordKind = "write" | "zeroes" | "trim" | "mountStart" | "config";

/** Whether records of this kind cover blocks (the others change no block). */
export function coversBlocks(kind: RecordKind): boolean {
  return kind !== "mountStart" && kind !== "config";
}

/**
 * One change in a volume's history. Writes cover whole blocks: the primary
 * turns partial-block writes into whole-block records (read-modify-write).
 */
export interface LogRecord {
  readonly epoch: Epoch;
  readonly lsn: Lsn;
  readonly kind: RecordKind;
  readonly block: BlockIndex;
  readonly blockCount: number;
  /** The blocks' bytes for `write` (blockCount * blockSize); the encoded configuration for `config`; null otherwise. */
  readonly data: Uint8Array | null;
  /** The client whose request made this record (the mounting client for mountStart). */
  readonly clientId: ClientId;
  /** That client's request sequence number; 0 for mountStart. Used to drop replayed duplicates. */
  readonly clientSeq: number;
}

export function recordVersion(r: LogRecord): Version {
  return { epoch: r.epoch, lsn: r.lsn };
}

/**
 * A volume's configuration. A replacement of one replica moves through
 * three configurations, each a `config` record in the log (Raft's joint
 * consensus, with a learner phase first):
 *   1. `replacement` set: the new replica is a learner: it is sent every
 *      record and region-resynced from empty, and it does not vote;
 *   2. once it is in sync, joint: `replicas` is the new set and
 *      `previousReplicas` the old one; commits, leases and mounts need a
 *      majority of each;
 *   3. once that is committed, `replicas` alone.
 * A replica uses the latest configuration in its log, committed or not.
 */
export interface VolumeConfig {
  readonly name: string;
  readonly blockSize: number;
  readonly blockCount: number;
  /** Distinct nodes, one replica each: the voters (the new set while joint). */
  readonly replicas: readonly NodeId[];
  /** Increases whenever the replica set changes. */
  readonly configVersion: number;
  /** While joint: the old voters. */
  readonly previousReplicas?: readonly NodeId[];
  /** While a learner is built: the replica it replaces and the learner. */
  readonly replacement?: { readonly from: NodeId; readonly to: NodeId };
}

/** W: a majority of N. */
export function writeQuorum(replicaCount: number): number {
  return Math.floor(replicaCount / 2) + 1;
}

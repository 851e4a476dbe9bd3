/**
 * The superblock on disk: written whole to a new file, synced, renamed over
 * the old one, and the directory synced, so a crash leaves either the old or
 * the new one. A checksum over the body catches a flipped bit; a superblock
 * that fails it is never trusted.
 *
 *   0 "RVSB"  4 u32 format  8 u32 bodyBytes  12 u32 crc of body  16 body (JSON)
 *
 * Formats: 1 had no consistentThrough (it reads as null: a replica of format
 * 1 dropped its whole log at a resync start, so its log base is what it
 * vouches for, which is what the core assumes for null); 2 adds it. Any
 * other format is refused: a newer replivol wrote it, and guessing at its
 * meaning could lose acknowledged writes.
 */
import { limits } from "../core/limits.js";
import { VolumeError } from "../core/errors.js";
import type { ClientSession } from "../core/session.js";
import { asClientId, asEpoch, asLsn, asNodeId, type Version, type VolumeConfig } from "../core/types.js";
import { crc32 } from "./crc32.js";
import type { Superblock } from "./replica-store.js";
import { hex } from "./log-frame.js";
import { readFully, type VolumeDisk } from "./volume-disk.js";

export const SUPERBLOCK_FILE = "superblock";
const SUPERBLOCK_TMP_FILE = "superblock.tmp";
const MAGIC = 0x42535652; // "RVSB" little-endian
/** The format this code writes. */
export const SUPERBLOCK_FORMAT = 2;
/** Formats this code reads. */
const FORMATS_READ: readonly number[] = [1, SUPERBLOCK_FORMAT];
const HEADER_BYTES = 16;
const BODY_BYTES_MAX = 1024 * 1024;

/** The superblock plus what the store itself needs to find its way after a crash. */
export interface PersistedState {
  readonly superblock: Superblock;
  /** The last record whose effect is in the block data and metadata on disk. */
  readonly appliedVersion: Version;
  /** The record just before the first retained one (the log's `prev`). */
  readonly logBase: Version;
  /** Log segments of any other generation are leftovers of a reset and are ignored. */
  readonly logGeneration: number;
  readonly regionBlocks: number;
}

export function encodeSuperblock(state: PersistedState): Buffer {
  return encodeSuperblockBody(SUPERBLOCK_FORMAT, { format: SUPERBLOCK_FORMAT, ...state });
}

/** Frames a body of any format (tests write older formats with it). */
export function encodeSuperblockBody(format: number, json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json), "utf8");
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(format, 4);
  header.writeUInt32LE(body.length, 8);
  header.writeUInt32LE(crc32(body), 12);
  return Buffer.concat([header, body]);
}

export async function writeSuperblockFile(disk: VolumeDisk, state: PersistedState): Promise<void> {
  const bytes = encodeSuperblock(state);
  const file = await disk.open(SUPERBLOCK_TMP_FILE, true);
  if (file === null) throw new Error("Cannot create the superblock's temporary file");
  try {
    await file.truncate(0);
    await file.writev([bytes], 0);
    await file.datasync();
  } finally {
    await file.close();
  }
  await disk.rename(SUPERBLOCK_TMP_FILE, SUPERBLOCK_FILE);
  await disk.syncDir();
}

/** Null if there is no superblock; VolumeError CORRUPT if there is one that cannot be trusted. */
export async function readSuperblockFile(disk: VolumeDisk, volumeName: string): Promise<PersistedState | null> {
  const file = await disk.open(SUPERBLOCK_FILE, false);
  if (file === null) return null;
  let bytes: Buffer;
  try {
    const size = await file.size();
    if (size < HEADER_BYTES || size > HEADER_BYTES + BODY_BYTES_MAX) throw corrupt(volumeName, `its size ${size} is out of bounds`);
    bytes = Buffer.alloc(size);
    await readFully(file, bytes, 0);
  } finally {
    await file.close();
  }
  return decodeSuperblock(bytes, volumeName);
}

function corrupt(volumeName: string, detail: string): VolumeError {
  return new VolumeError("CORRUPT", `Superblock of volume ${volumeName} cannot be trusted, refusing to open it: ${detail}`);
}

export function decodeSuperblock(bytes: Buffer, volumeName: string): PersistedState {
  if (bytes.length < HEADER_BYTES) throw corrupt(volumeName, `it is ${bytes.length} bytes long`);
  if (bytes.readUInt32LE(0) !== MAGIC) throw corrupt(volumeName, "bad magic number");
  const format = bytes.readUInt32LE(4);
  if (!FORMATS_READ.includes(format)) {
    throw corrupt(volumeName, `it is in format ${format}, and this replivol reads formats ${FORMATS_READ.join(" and ")} only (was it written by a newer version?)`);
  }
  const bodyBytes = bytes.readUInt32LE(8);
  if (HEADER_BYTES + bodyBytes !== bytes.length) throw corrupt(volumeName, `body length ${bodyBytes} does not match the file`);
  const body = bytes.subarray(HEADER_BYTES);
  const want = bytes.readUInt32LE(12);
  const got = crc32(body);
  if (want !== got) throw corrupt(volumeName, `checksum ${hex(got)} does not match ${hex(want)}`);
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw corrupt(volumeName, `its body is not JSON (${String(err)})`);
  }
  try {
    return parseState(json, format);
  } catch (err) {
    throw corrupt(volumeName, (err as Error).message);
  }
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Json;
}
function count(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Error(`${what} is not a non-negative integer`);
  return v;
}
function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw new Error(`${what} is not a boolean`);
  return v;
}
function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what} is not a string`);
  return v;
}
function version(v: unknown, what: string): Version {
  const o = obj(v, what);
  return { epoch: asEpoch(count(o.epoch, `${what}.epoch`)), lsn: asLsn(count(o.lsn, `${what}.lsn`)) };
}
function list(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) throw new Error(`${what} is not a list of at most ${max}`);
  return v as unknown[];
}

function parseState(json: unknown, format: number): PersistedState {
  const o = obj(json, "superblock");
  if (o.format !== format) throw new Error(`its body says format ${String(o.format)}, its header ${format}`);
  const sb = obj(o.superblock, "superblock");
  const c = obj(sb.config, "config");
  const config: VolumeConfig = {
    name: str(c.name, "config.name"),
    blockSize: count(c.blockSize, "config.blockSize"),
    blockCount: count(c.blockCount, "config.blockCount"),
    replicas: list(c.replicas, "config.replicas", limits.replicaCountMax).map((r, i) => asNodeId(str(r, `config.replicas[${i}]`))),
    configVersion: count(c.configVersion, "config.configVersion"),
    ...(c.previousReplicas === undefined
      ? {}
      : { previousReplicas: list(c.previousReplicas, "config.previousReplicas", limits.replicaCountMax).map((r, i) => asNodeId(str(r, `config.previousReplicas[${i}]`))) }),
    ...(c.replacement === undefined
      ? {}
      : {
          replacement: {
            from: asNodeId(str(obj(c.replacement, "config.replacement").from, "config.replacement.from")),
            to: asNodeId(str(obj(c.replacement, "config.replacement").to, "config.replacement.to")),
          },
        }),
  };
  const sessions: ClientSession[] = list(sb.sessions, "sessions", limits.clientSessionsMax).map((s, i) => {
    const so = obj(s, `sessions[${i}]`);
    return {
      clientId: asClientId(str(so.clientId, `sessions[${i}].clientId`)),
      clientSeq: count(so.clientSeq, `sessions[${i}].clientSeq`),
      lsn: asLsn(count(so.lsn, `sessions[${i}].lsn`)),
    };
  });
  const consistent = bool(sb.consistent, "consistent");
  const consistentThrough = format < 2 || sb.consistentThrough === null ? null : version(sb.consistentThrough, "consistentThrough");
  if (consistent && consistentThrough !== null) throw new Error("a consistent replica holds a consistentThrough");
  return {
    superblock: {
      config,
      promisedEpoch: asEpoch(count(sb.promisedEpoch, "promisedEpoch")),
      commitLsn: asLsn(count(sb.commitLsn, "commitLsn")),
      consistent,
      consistentThrough,
      unsurePastHead: bool(sb.unsurePastHead, "unsurePastHead"),
      sessions,
    },
    appliedVersion: version(o.appliedVersion, "appliedVersion"),
    logBase: version(o.logBase, "logBase"),
    logGeneration: count(o.logGeneration, "logGeneration"),
    regionBlocks: count(o.regionBlocks, "regionBlocks"),
  };
}

/**
 * The core's peer messages <-> frames of proto/replication.proto (src/rpc/
 * frames.ts): a header as proto-loader gives and takes it (camelCase fields,
 * uint64 as number, enums as strings) and the records' and regions' bytes
 * after it, decoded as views into the received frame.
 *
 * Decoding is where bytes from another process become protocol input, so it
 * checks structure here: every number a safe non-negative integer, every
 * version present, append and fetch records contiguous. A message that fails
 * is dropped by the caller (the sender retransmits what matters); the core
 * never sees it.
 */
import { CONFIG_BYTES_MAX, decodeConfig, encodeConfig } from "../core/config.js";
import { VolumeError } from "../core/errors.js";
import type { PeerMessage } from "../core/messages.js";
import type { ClientSession } from "../core/session.js";
import { decodeFrame, encodeFrame, PayloadReader } from "./frames.js";
import { replicationService } from "./proto.js";
import {
  asBlock,
  asClientId,
  asEpoch,
  asLsn,
  type LogRecord,
  type RecordKind,
  type Version,
  type VolumeConfig,
} from "../core/types.js";

/** One PeerMessage as proto-loader encodes and decodes it. */
export interface PeerMessageWire {
  volume: string;
  body?: string;
  [field: string]: unknown;
}

const KIND_TO_WIRE: Record<RecordKind, string> = {
  write: "RECORD_KIND_WRITE",
  zeroes: "RECORD_KIND_ZEROES",
  trim: "RECORD_KIND_TRIM",
  mountStart: "RECORD_KIND_MOUNT_START",
  config: "RECORD_KIND_CONFIG",
};

const KIND_FROM_WIRE = new Map<string, RecordKind>(Object.entries(KIND_TO_WIRE).map(([k, v]) => [v, k as RecordKind]));

/** A message from a peer that cannot be protocol input. */
export class PeerCodecError extends VolumeError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", `Bad peer message: ${message}`);
  }
}

// ---------------------------------------------------------------- encoding

function versionOut(v: Version): { epoch: number; lsn: number } {
  return { epoch: v.epoch, lsn: v.lsn };
}

function recordOut(r: LogRecord, payloads: Uint8Array[]): Record<string, unknown> {
  if (r.data !== null) payloads.push(r.data);
  return {
    epoch: r.epoch,
    lsn: r.lsn,
    kind: KIND_TO_WIRE[r.kind],
    block: r.block,
    blockCount: r.blockCount,
    dataLength: r.data?.length ?? 0,
    clientId: r.clientId,
    clientSeq: r.clientSeq,
  };
}

function sessionOut(s: ClientSession): Record<string, unknown> {
  return { clientId: s.clientId, clientSeq: s.clientSeq, lsn: s.lsn };
}

/** The frame of one message: what the transport sends. */
export function encodePeerFrame(volume: string, msg: PeerMessage): Buffer {
  const payloads: Uint8Array[] = [];
  const header = encodePeerMessage(volume, msg, payloads);
  return encodeFrame(exchangeMethod().requestSerialize, header, payloads);
}

/** A received frame as the volume it names and the core's message; throws PeerCodecError or FrameError. */
export function decodePeerFrame(frame: Buffer): { volume: string; msg: PeerMessage } {
  const { header, payload } = decodeFrame(exchangeMethod().requestDeserialize, frame);
  const w = obj(header, "message");
  const body = w["body"];
  const b = typeof body === "string" ? w[body] : undefined;
  const reader = new PayloadReader(payload);
  if (typeof b === "object" && b !== null) {
    const records = (b as Obj)["records"];
    if (Array.isArray(records)) records.forEach((r, i) => reader.take(r, `${String(body)}.records[${i}]`));
    if (body === "region") reader.take(b, "region");
    if (body === "blockData") reader.take(b, "blockData");
  }
  reader.end();
  return decodePeerMessage(header);
}

interface ExchangeCodec {
  readonly requestSerialize: (value: object) => Buffer;
  readonly requestDeserialize: (bytes: Buffer) => unknown;
}

let exchange: ExchangeCodec | null = null;

function exchangeMethod(): ExchangeCodec {
  if (exchange === null) {
    const m = replicationService().service["Exchange"];
    if (m === undefined) throw new Error("Replication.Exchange is not in proto/replication.proto");
    exchange = { requestSerialize: m.requestSerialize as ExchangeCodec["requestSerialize"], requestDeserialize: m.requestDeserialize };
  }
  return exchange;
}

/** The header of one message; the bytes of its records and regions go to `payloads`, in order. */
export function encodePeerMessage(volume: string, msg: PeerMessage, payloads: Uint8Array[]): PeerMessageWire {
  switch (msg.type) {
    case "promise":
      return { volume, promise: { epoch: msg.epoch, clientId: msg.clientId, takeover: msg.takeover, configVersion: msg.configVersion } };
    case "promiseGranted":
      return {
        volume,
        promiseGranted: {
          epoch: msg.epoch,
          head: versionOut(msg.head),
          commitLsn: msg.commitLsn,
          consistent: msg.consistent,
          unsurePastHead: msg.unsurePastHead,
          witnessHead: versionOut(msg.witnessHead),
          ...(msg.sinceOlderLeaseTicks === null ? {} : { sinceOlderLeaseTicks: msg.sinceOlderLeaseTicks }),
          config: encodeConfig(msg.config),
        },
      };
    case "promiseRefused":
      return { volume, promiseRefused: { epoch: msg.epoch, reason: msg.reason === "stale" ? "REASON_STALE" : "REASON_BUSY", promisedEpoch: msg.promisedEpoch } };
    case "fetch":
      return { volume, fetch: { epoch: msg.epoch, fromLsn: msg.fromLsn, ...(msg.toLsn === null ? {} : { toLsn: msg.toLsn }) } };
    case "fetchReply":
      return {
        volume,
        fetchReply: { epoch: msg.epoch, prev: versionOut(msg.prev), records: msg.records.map((r) => recordOut(r, payloads)), retained: msg.retained, head: versionOut(msg.head) },
      };
    case "append":
      return {
        volume,
        append: { epoch: msg.epoch, prev: versionOut(msg.prev), records: msg.records.map((r) => recordOut(r, payloads)), commitLsn: msg.commitLsn, seq: msg.seq },
      };
    case "appendReply":
      return {
        volume,
        appendReply: {
          epoch: msg.epoch,
          seq: msg.seq,
          ok: msg.ok,
          matchLsn: msg.matchLsn,
          head: versionOut(msg.head),
          commitLsn: msg.commitLsn,
          consistent: msg.consistent,
        },
      };
    case "resyncBegin":
      return { volume, resyncBegin: { epoch: msg.epoch, snapshot: versionOut(msg.snapshot), sessions: msg.sessions.map(sessionOut), seq: msg.seq, config: encodeConfig(msg.config) } };
    case "resyncBeginReply":
      return {
        volume,
        resyncBeginReply: {
          epoch: msg.epoch,
          seq: msg.seq,
          snapshot: versionOut(msg.snapshot),
          effectiveSnapshot: versionOut(msg.effectiveSnapshot),
          regionVersions: msg.regionVersions.map(regionVersionOut),
        },
      };
    case "region":
      payloads.push(msg.data);
      return {
        volume,
        region: {
          epoch: msg.epoch,
          region: msg.region,
          dataLength: msg.data.length,
          version: regionVersionOut(msg.version),
          copiedAt: msg.copiedAt,
          seq: msg.seq,
          ...(msg.blocks === null ? {} : { blocks: msg.blocks }),
        },
      };
    case "regionReply":
      return { volume, regionReply: { epoch: msg.epoch, region: msg.region, seq: msg.seq } };
    case "resyncDone":
      return { volume, resyncDone: { epoch: msg.epoch, snapshot: versionOut(msg.snapshot), seq: msg.seq } };
    case "resyncDoneReply":
      return { volume, resyncDoneReply: { epoch: msg.epoch, snapshot: versionOut(msg.snapshot) } };
    case "release":
      return { volume, release: { epoch: msg.epoch } };
    case "stale":
      return { volume, stale: { epoch: msg.epoch, promisedEpoch: msg.promisedEpoch, byReserved: msg.byReserved } };
    case "blockFetch":
      return { volume, blockFetch: { epoch: msg.epoch, seq: msg.seq, block: msg.block } };
    case "corruptReport":
      return { volume, corruptReport: { epoch: msg.epoch, blocks: [...msg.blocks] } };
    case "headProbe":
      return { volume, headProbe: { epoch: msg.epoch, seq: msg.seq } };
    case "regionVersions":
      return {
        volume,
        regionVersions: { epoch: msg.epoch, appliedLsn: msg.appliedLsn, first: msg.first, versions: msg.versions.map(regionVersionOut), digests: msg.digests === null ? [] : [...msg.digests] },
      };
    case "regionVersionsReply":
      return { volume, regionVersionsReply: { epoch: msg.epoch, followerStale: [...msg.followerStale], primaryStale: [...msg.primaryStale] } };
    case "regionDigestsReply":
      return { volume, regionDigestsReply: { epoch: msg.epoch, appliedLsn: msg.appliedLsn, regions: [...msg.regions], digests: [...msg.digests] } };
    case "headReport":
      return {
        volume,
        headReport: {
          epoch: msg.epoch,
          seq: msg.seq,
          head: versionOut(msg.head),
          commitLsn: msg.commitLsn,
          appliedLsn: msg.appliedLsn,
          regionsDigest: msg.regionsDigest,
          configCommitted: msg.configCommitted,
          consistent: msg.consistent,
          unsurePastHead: msg.unsurePastHead,
          ...(msg.heardPrimaryTicksAgo === null ? {} : { heardPrimaryTicksAgo: msg.heardPrimaryTicksAgo }),
        },
      };
    case "blockData":
      if (msg.data !== null) payloads.push(msg.data);
      return {
        volume,
        blockData: { epoch: msg.epoch, seq: msg.seq, block: msg.block, appliedLsn: msg.appliedLsn, hasData: msg.data !== null, dataLength: msg.data?.length ?? 0 },
      };
    default:
      throw new Error(`Unknown peer message ${JSON.stringify(msg satisfies never)}`);
  }
}

/**
 * Region versions may be REGION_DIRTY (-1, -1), which uint64 cannot carry:
 * on the wire every region version is shifted by one (0 is dirty).
 */
function regionVersionOut(v: Version): { epoch: number; lsn: number } {
  return { epoch: v.epoch + 1, lsn: v.lsn + 1 };
}

// ---------------------------------------------------------------- decoding

type Obj = Record<string, unknown>;

function obj(x: unknown, what: string): Obj {
  if (typeof x !== "object" || x === null) throw new PeerCodecError(`${what} is missing`);
  return x as Obj;
}

function uint(x: unknown, what: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new PeerCodecError(`${what} is not a non-negative integer below 2^53`);
  return x;
}

function uint32(x: unknown, what: string): number {
  if (uint(x, what) > 0xffffffff) throw new PeerCodecError(`${what} is not a 32-bit unsigned integer`);
  return x as number;
}

function bool(x: unknown, what: string): boolean {
  if (typeof x !== "boolean") throw new PeerCodecError(`${what} is not a boolean`);
  return x;
}

function str(x: unknown, what: string, maxBytes: number): string {
  if (typeof x !== "string" || Buffer.byteLength(x, "utf8") > maxBytes) throw new PeerCodecError(`${what} is not a string of at most ${maxBytes} bytes`);
  return x;
}

function bytes(x: unknown, what: string): Uint8Array {
  if (!(x instanceof Uint8Array)) throw new PeerCodecError(`${what} is not bytes`);
  return x;
}

function configIn(x: unknown, what: string): VolumeConfig {
  try {
    return decodeConfig(bytes(x, what));
  } catch (err) {
    throw new PeerCodecError(`${what} is not a configuration: ${(err as Error).message}`);
  }
}

function arr(x: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(x) || x.length > max) throw new PeerCodecError(`${what} is not a list of at most ${max}`);
  return x as unknown[];
}

function versionIn(x: unknown, what: string): Version {
  const o = obj(x, what);
  return { epoch: asEpoch(uint(o["epoch"], `${what}.epoch`)), lsn: asLsn(uint(o["lsn"], `${what}.lsn`)) };
}

function regionVersionIn(x: unknown, what: string): Version {
  const o = obj(x, what);
  const epoch = uint(o["epoch"], `${what}.epoch`) - 1;
  const lsn = uint(o["lsn"], `${what}.lsn`) - 1;
  if ((epoch < 0 || lsn < 0) && !(epoch === -1 && lsn === -1)) throw new PeerCodecError(`${what} is no version`);
  return { epoch: asEpoch(epoch), lsn: asLsn(lsn) };
}

function optionalUint(o: Obj, field: string, what: string): number | null {
  const v = o[field];
  return v === undefined || v === null ? null : uint(v, what);
}

const CLIENT_ID_BYTES_MAX = 255;
const RECORDS_PER_MESSAGE_MAX = 1 << 20;
const SESSIONS_MAX = 1 << 16;
const REGIONS_MAX = 1 << 24;
const CORRUPT_REPORT_BLOCKS_MAX = 1 << 16;

function recordIn(x: unknown, what: string): LogRecord {
  const o = obj(x, what);
  const kind = KIND_FROM_WIRE.get(String(o["kind"]));
  if (kind === undefined) throw new PeerCodecError(`${what}.kind ${String(o["kind"])} is unknown`);
  const data = bytes(o["data"], `${what}.data`);
  if (kind !== "write" && kind !== "config" && data.length > 0) throw new PeerCodecError(`${what} is a ${kind} with data`);
  if (kind === "config" && (data.length === 0 || data.length > CONFIG_BYTES_MAX)) throw new PeerCodecError(`${what} is a config record of ${data.length} bytes`);
  return {
    epoch: asEpoch(uint(o["epoch"], `${what}.epoch`)),
    lsn: asLsn(uint(o["lsn"], `${what}.lsn`)),
    kind,
    block: asBlock(uint(o["block"], `${what}.block`)),
    blockCount: uint(o["blockCount"], `${what}.blockCount`),
    data: kind === "write" || kind === "config" ? data : null,
    clientId: asClientId(str(o["clientId"], `${what}.clientId`, CLIENT_ID_BYTES_MAX)),
    clientSeq: uint(o["clientSeq"], `${what}.clientSeq`),
  };
}

/** Records that must follow `prev` one lsn at a time (the core asserts it). */
function contiguousRecords(x: unknown, prev: Version, what: string): LogRecord[] {
  const out = arr(x, what, RECORDS_PER_MESSAGE_MAX).map((r, i) => recordIn(r, `${what}[${i}]`));
  let expect = prev.lsn + 1;
  for (const r of out) {
    if (r.lsn !== expect) throw new PeerCodecError(`${what} are not contiguous after ${prev.lsn}`);
    expect++;
  }
  return out;
}

function sessionIn(x: unknown, what: string): ClientSession {
  const o = obj(x, what);
  return { clientId: asClientId(str(o["clientId"], `${what}.clientId`, CLIENT_ID_BYTES_MAX)), clientSeq: uint(o["clientSeq"], `${what}.clientSeq`), lsn: asLsn(uint(o["lsn"], `${what}.lsn`)) };
}

/** A received header (its payload views attached as `data`) as the volume it names and the core's message; throws PeerCodecError. */
export function decodePeerMessage(wire: unknown): { volume: string; msg: PeerMessage } {
  const w = obj(wire, "message");
  const volume = str(w["volume"], "volume", 64);
  const body = w["body"];
  if (typeof body !== "string") throw new PeerCodecError("it has no body");
  const b = obj(w[body], body);
  const epoch = asEpoch(uint(b["epoch"], `${body}.epoch`));
  const msg = ((): PeerMessage => {
    switch (body) {
      case "promise":
        return { type: "promise", epoch, clientId: asClientId(str(b["clientId"], "promise.clientId", CLIENT_ID_BYTES_MAX)), takeover: bool(b["takeover"], "promise.takeover"), configVersion: uint(b["configVersion"], "promise.configVersion") };
      case "promiseGranted":
        return {
          type: "promiseGranted",
          epoch,
          head: versionIn(b["head"], "promiseGranted.head"),
          commitLsn: asLsn(uint(b["commitLsn"], "promiseGranted.commitLsn")),
          consistent: bool(b["consistent"], "promiseGranted.consistent"),
          unsurePastHead: bool(b["unsurePastHead"], "promiseGranted.unsurePastHead"),
          witnessHead: versionIn(b["witnessHead"], "promiseGranted.witnessHead"),
          sinceOlderLeaseTicks: optionalUint(b, "sinceOlderLeaseTicks", "promiseGranted.sinceOlderLeaseTicks"),
          config: configIn(b["config"], "promiseGranted.config"),
        };
      case "promiseRefused": {
        const reason = b["reason"] === "REASON_STALE" ? "stale" : b["reason"] === "REASON_BUSY" ? "busy" : null;
        if (reason === null) throw new PeerCodecError(`promiseRefused.reason ${String(b["reason"])} is unknown`);
        return { type: "promiseRefused", epoch, reason, promisedEpoch: asEpoch(uint(b["promisedEpoch"], "promiseRefused.promisedEpoch")) };
      }
      case "fetch": {
        const toLsn = optionalUint(b, "toLsn", "fetch.toLsn");
        return { type: "fetch", epoch, fromLsn: asLsn(uint(b["fromLsn"], "fetch.fromLsn")), toLsn: toLsn === null ? null : asLsn(toLsn) };
      }
      case "fetchReply": {
        const prev = versionIn(b["prev"], "fetchReply.prev");
        return {
          type: "fetchReply",
          epoch,
          prev,
          records: contiguousRecords(b["records"], prev, "fetchReply.records"),
          retained: bool(b["retained"], "fetchReply.retained"),
          head: versionIn(b["head"], "fetchReply.head"),
        };
      }
      case "append": {
        const prev = versionIn(b["prev"], "append.prev");
        return {
          type: "append",
          epoch,
          prev,
          records: contiguousRecords(b["records"], prev, "append.records"),
          commitLsn: asLsn(uint(b["commitLsn"], "append.commitLsn")),
          seq: uint(b["seq"], "append.seq"),
        };
      }
      case "appendReply":
        return {
          type: "appendReply",
          epoch,
          seq: uint(b["seq"], "appendReply.seq"),
          ok: bool(b["ok"], "appendReply.ok"),
          matchLsn: asLsn(uint(b["matchLsn"], "appendReply.matchLsn")),
          head: versionIn(b["head"], "appendReply.head"),
          commitLsn: asLsn(uint(b["commitLsn"], "appendReply.commitLsn")),
          consistent: bool(b["consistent"], "appendReply.consistent"),
        };
      case "resyncBegin":
        return {
          type: "resyncBegin",
          epoch,
          snapshot: versionIn(b["snapshot"], "resyncBegin.snapshot"),
          sessions: arr(b["sessions"], "resyncBegin.sessions", SESSIONS_MAX).map((s, i) => sessionIn(s, `resyncBegin.sessions[${i}]`)),
          seq: uint(b["seq"], "resyncBegin.seq"),
          config: configIn(b["config"], "resyncBegin.config"),
        };
      case "resyncBeginReply":
        return {
          type: "resyncBeginReply",
          epoch,
          seq: uint(b["seq"], "resyncBeginReply.seq"),
          snapshot: versionIn(b["snapshot"], "resyncBeginReply.snapshot"),
          effectiveSnapshot: versionIn(b["effectiveSnapshot"], "resyncBeginReply.effectiveSnapshot"),
          regionVersions: arr(b["regionVersions"], "resyncBeginReply.regionVersions", REGIONS_MAX).map((v, i) => regionVersionIn(v, `resyncBeginReply.regionVersions[${i}]`)),
        };
      case "region":
        return {
          type: "region",
          epoch,
          region: uint(b["region"], "region.region"),
          data: bytes(b["data"], "region.data"),
          blocks: b["blocks"] === undefined || bytes(b["blocks"], "region.blocks").length === 0 ? null : bytes(b["blocks"], "region.blocks"),
          version: regionVersionIn(b["version"], "region.version"),
          copiedAt: asLsn(uint(b["copiedAt"], "region.copiedAt")),
          seq: uint(b["seq"], "region.seq"),
        };
      case "regionReply":
        return { type: "regionReply", epoch, region: uint(b["region"], "regionReply.region"), seq: uint(b["seq"], "regionReply.seq") };
      case "resyncDone":
        return { type: "resyncDone", epoch, snapshot: versionIn(b["snapshot"], "resyncDone.snapshot"), seq: uint(b["seq"], "resyncDone.seq") };
      case "resyncDoneReply":
        return { type: "resyncDoneReply", epoch, snapshot: versionIn(b["snapshot"], "resyncDoneReply.snapshot") };
      case "release":
        return { type: "release", epoch };
      case "stale":
        return { type: "stale", epoch, promisedEpoch: asEpoch(uint(b["promisedEpoch"], "stale.promisedEpoch")), byReserved: bool(b["byReserved"], "stale.byReserved") };
      case "blockFetch":
        return { type: "blockFetch", epoch, seq: uint(b["seq"], "blockFetch.seq"), block: asBlock(uint(b["block"], "blockFetch.block")) };
      case "corruptReport":
        return {
          type: "corruptReport",
          epoch,
          blocks: arr(b["blocks"], "corruptReport.blocks", CORRUPT_REPORT_BLOCKS_MAX).map((x, i) => asBlock(uint(x, `corruptReport.blocks[${i}]`))),
        };
      case "headProbe":
        return { type: "headProbe", epoch, seq: uint(b["seq"], "headProbe.seq") };
      case "regionVersions": {
        const versions = arr(b["versions"], "regionVersions.versions", REGIONS_MAX).map((v, i) => regionVersionIn(v, `regionVersions.versions[${i}]`));
        const digests = arr(b["digests"], "regionVersions.digests", REGIONS_MAX).map((x, i) => uint32(x, `regionVersions.digests[${i}]`));
        // (None from a node that sends no digests.)
        if (digests.length !== 0 && digests.length !== versions.length) throw new PeerCodecError(`regionVersions carries ${digests.length} digests for ${versions.length} versions`);
        return {
          type: "regionVersions",
          epoch,
          appliedLsn: asLsn(uint(b["appliedLsn"], "regionVersions.appliedLsn")),
          first: uint(b["first"], "regionVersions.first"),
          versions,
          digests: digests.length === 0 ? null : digests,
        };
      }
      case "regionVersionsReply":
        return {
          type: "regionVersionsReply",
          epoch,
          followerStale: arr(b["followerStale"], "regionVersionsReply.followerStale", REGIONS_MAX).map((x, i) => uint(x, `regionVersionsReply.followerStale[${i}]`)),
          primaryStale: arr(b["primaryStale"], "regionVersionsReply.primaryStale", REGIONS_MAX).map((x, i) => uint(x, `regionVersionsReply.primaryStale[${i}]`)),
        };
      case "regionDigestsReply": {
        const regions = arr(b["regions"], "regionDigestsReply.regions", REGIONS_MAX).map((x, i) => uint(x, `regionDigestsReply.regions[${i}]`));
        const digests = arr(b["digests"], "regionDigestsReply.digests", REGIONS_MAX).map((x, i) => uint32(x, `regionDigestsReply.digests[${i}]`));
        if (digests.length !== regions.length) throw new PeerCodecError(`regionDigestsReply carries ${digests.length} digests for ${regions.length} regions`);
        return { type: "regionDigestsReply", epoch, appliedLsn: asLsn(uint(b["appliedLsn"], "regionDigestsReply.appliedLsn")), regions, digests };
      }
      case "headReport":
        return {
          type: "headReport",
          epoch,
          seq: uint(b["seq"], "headReport.seq"),
          head: versionIn(b["head"], "headReport.head"),
          commitLsn: asLsn(uint(b["commitLsn"], "headReport.commitLsn")),
          appliedLsn: asLsn(uint(b["appliedLsn"], "headReport.appliedLsn")),
          regionsDigest: uint(b["regionsDigest"], "headReport.regionsDigest"),
          configCommitted: bool(b["configCommitted"], "headReport.configCommitted"),
          consistent: bool(b["consistent"], "headReport.consistent"),
          unsurePastHead: bool(b["unsurePastHead"], "headReport.unsurePastHead"),
          heardPrimaryTicksAgo: optionalUint(b, "heardPrimaryTicksAgo", "headReport.heardPrimaryTicksAgo"),
        };
      case "blockData": {
        const data = bytes(b["data"], "blockData.data");
        const hasData = bool(b["hasData"], "blockData.hasData");
        if (!hasData && data.length > 0) throw new PeerCodecError("blockData without a copy carries bytes");
        return {
          type: "blockData",
          epoch,
          seq: uint(b["seq"], "blockData.seq"),
          block: asBlock(uint(b["block"], "blockData.block")),
          appliedLsn: asLsn(uint(b["appliedLsn"], "blockData.appliedLsn")),
          data: hasData ? data : null,
        };
      }
      default:
        throw new PeerCodecError(`body ${body} is unknown`);
    }
  })();
  return { volume, msg };
}

/**
 * Volume.Io's messages as frames (src/rpc/frames.ts): the requests' and
 * replies' data after a protobuf header, so block bytes never go through
 * protobuf encoding. Shared by the node (src/node/volume-service.ts) and the
 * client library (src/client/volume.ts).
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { decodeFrame, encodeFrame, FrameError, PayloadReader, type Deserialize, type FrameAlloc, type Serialize } from "./frames.js";
import { protoEnum, protoType, volumeService } from "./proto.js";
import type { IoBatchOut, IoBatchWire, IoKindWire, IoReplyBatchIn, IoReplyWire } from "./volume-wire.js";

interface IoCodec {
  readonly path: string;
  readonly requestSerialize: Serialize;
  readonly requestDeserialize: Deserialize;
  readonly responseSerialize: Serialize;
  readonly responseDeserialize: Deserialize;
}

let codec: IoCodec | null = null;

function ioMethod(): IoCodec {
  if (codec === null) {
    const m = volumeService().service["Io"];
    if (m === undefined) throw new Error("Volume.Io is not in proto/volume.proto");
    codec = {
      path: m.path,
      requestSerialize: headerEncoder("replivol.volume.v1.IoBatch"),
      requestDeserialize: m.requestDeserialize,
      responseSerialize: headerEncoder("replivol.volume.v1.IoReplyBatch"),
      responseDeserialize: m.responseDeserialize,
    };
  }
  return codec;
}

let ioKindNumbers: Readonly<Record<string, number>> | null = null;

function ioKindNumber(kind: IoKindWire): number {
  ioKindNumbers ??= protoEnum("replivol.volume.v1.IoKind").values;
  const n = ioKindNumbers[kind];
  if (n === undefined) throw new Error(`IoKind ${kind} is not in proto/volume.proto`);
  return n;
}

/**
 * The header encoder of the Io stream's messages (IoBatch, IoReplyBatch).
 * A client or node sends one for every few requests, and proto-loader's
 * serializer first copies each message through `fromObject` (5% of a
 * primary's CPU serving 4 KiB reads, and 5% of its client's). The headers
 * are built in one shape with the wire's types already (numbers for uint64
 * and enums, strings, booleans; absent fields undefined, which are not
 * encoded), so protobufjs encodes them as they are: the same bytes
 * (test/unit/io-frames.test.ts).
 */
function headerEncoder(typeName: string): Serialize {
  const type = protoType(typeName);
  return (value) => type.encode(value).finish() as Buffer;
}

/** The gRPC path of Volume.Io (the client opens it with pass-through serializers). */
export function ioMethodPath(): string {
  return ioMethod().path;
}

export const passThrough = (b: Buffer): Buffer => b;

/** The Volume service for a server: Io's frames pass through gRPC as bytes, (de)coded by the service. */
export function volumeServiceDefinition(): ServiceDefinition {
  const def = volumeService().service;
  const io = def["Io"];
  if (io === undefined) throw new Error("Volume.Io is not in proto/volume.proto");
  return { ...def, Io: { ...io, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough } };
}

export function encodeIoBatch(batch: IoBatchOut): Buffer {
  const payloads: Uint8Array[] = [];
  const requests = batch.requests.map((r) => {
    const data = r.data;
    if (data !== undefined && data.length > 0) payloads.push(data);
    return { id: r.id, kind: ioKindNumber(r.kind), offset: r.offset, length: r.length, clientSeq: r.clientSeq, dataLength: data?.length ?? 0 };
  });
  return encodeFrame(ioMethod().requestSerialize, { volume: batch.volume, clientId: batch.clientId, epoch: batch.epoch, requests, readOnly: batch.readOnly ?? false }, payloads);
}

/** Throws FrameError when the frame is no IoBatch. */
export function decodeIoBatch(frame: Buffer): IoBatchWire {
  const { header, payload } = decodeFrame(ioMethod().requestDeserialize, frame);
  const batch = header as IoBatchWire;
  if (typeof batch !== "object" || batch === null || !Array.isArray(batch.requests)) throw new FrameError("an IoBatch without requests");
  const reader = new PayloadReader(payload);
  batch.requests.forEach((r, i) => reader.take(r, `requests[${i}]`));
  reader.end();
  return batch;
}

/** The replies' frame, its memory from `alloc` (see encodeFrame); their data is copied into it. */
export function encodeIoReplyBatch(replies: readonly IoReplyWire[], alloc?: FrameAlloc): Buffer {
  const payloads: Uint8Array[] = [];
  // One object shape for every reply, absent fields undefined (not encoded): the encoder then stays monomorphic.
  const out = replies.map((r) => {
    const data = r.data;
    if (data !== undefined && data.length > 0) payloads.push(data);
    return { id: r.id, ok: r.ok, dataLength: data?.length ?? 0, code: r.code, message: r.message, epoch: r.epoch, staleMs: r.staleMs };
  });
  return encodeFrame(ioMethod().responseSerialize, { replies: out }, payloads, alloc);
}

/** Throws FrameError when the frame is no IoReplyBatch. */
export function decodeIoReplyBatch(frame: Buffer): IoReplyBatchIn {
  const { header, payload } = decodeFrame(ioMethod().responseDeserialize, frame);
  const batch = header as IoReplyBatchIn;
  if (typeof batch !== "object" || batch === null || !Array.isArray(batch.replies)) throw new FrameError("an IoReplyBatch without replies");
  const reader = new PayloadReader(payload);
  batch.replies.forEach((r, i) => reader.take(r, `replies[${i}]`));
  reader.end();
  return batch;
}

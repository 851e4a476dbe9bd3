import { describe, expect, it } from "vitest";
import { decodeIoBatch, decodeIoReplyBatch, encodeIoBatch, encodeIoReplyBatch } from "../../src/rpc/io-frames.js";
import { volumeService } from "../../src/rpc/proto.js";
import type { IoBatchOut, IoReplyWire } from "../../src/rpc/volume-wire.js";

const REPLIES: IoReplyWire[] = [
  { id: 1, ok: true, epoch: 3 },
  { id: 2 ** 40 + 7, ok: true, data: new Uint8Array(4096).fill(9), epoch: 2 ** 33 },
  { id: 3, ok: false, code: "FENCED", message: "Fenced by epoch 4", epoch: 3 },
  { id: 4, ok: true, data: new Uint8Array([1, 2, 3]), epoch: 3, staleMs: 250 },
];

describe("IoReplyBatch frames", () => {
  it("encode the header to the same bytes as proto-loader's serializer, and decode back", () => {
    const frame = encodeIoReplyBatch(REPLIES);
    const headerLength = frame.readUInt32LE(0);
    const method = volumeService().service["Io"];
    const header = { replies: REPLIES.map(({ data, ...rest }) => ({ ...rest, dataLength: data?.length ?? 0 })) };
    expect(Buffer.compare(frame.subarray(4, 4 + headerLength), method!.responseSerialize(header))).toBe(0);
    const back = decodeIoReplyBatch(frame).replies;
    expect(back.map((r) => r.id)).toEqual(REPLIES.map((r) => r.id));
    expect(back.map((r) => r.epoch)).toEqual(REPLIES.map((r) => r.epoch));
    expect(back.map((r) => [r.ok, r.code, r.message, r.staleMs])).toEqual(REPLIES.map((r) => [r.ok, r.code ?? "", r.message ?? "", r.staleMs ?? 0]));
    expect(back.map((r) => Buffer.from(r.data).toString("hex"))).toEqual(REPLIES.map((r) => Buffer.from(r.data ?? []).toString("hex")));
  });
});

const BATCH: IoBatchOut = {
  volume: "vol1",
  clientId: "client-1",
  epoch: 2 ** 35,
  readOnly: false,
  requests: [
    { id: 1, kind: "IO_KIND_READ", offset: 0, length: 4096, clientSeq: 0 },
    { id: 2, kind: "IO_KIND_WRITE", offset: 2 ** 40, length: 5, clientSeq: 7, data: new Uint8Array([1, 2, 3, 4, 5]) },
    { id: 3, kind: "IO_KIND_TRIM", offset: 8192, length: 4096, clientSeq: 8 },
    { id: 4, kind: "IO_KIND_WRITE_ZEROES", offset: 8192, length: 4096, clientSeq: 9 },
    { id: 5, kind: "IO_KIND_FLUSH", offset: 0, length: 0, clientSeq: 9 },
  ],
};

describe("IoBatch frames", () => {
  it("encode the header to the same bytes as proto-loader's serializer, and decode back", () => {
    const frame = encodeIoBatch(BATCH);
    const headerLength = frame.readUInt32LE(0);
    const method = volumeService().service["Io"];
    const header = { ...BATCH, requests: BATCH.requests.map(({ data, ...rest }) => ({ ...rest, dataLength: data?.length ?? 0 })) };
    expect(Buffer.compare(frame.subarray(4, 4 + headerLength), method!.requestSerialize(header))).toBe(0);
    const back = decodeIoBatch(frame);
    expect([back.volume, back.clientId, back.epoch]).toEqual([BATCH.volume, BATCH.clientId, BATCH.epoch]);
    expect(back.requests.map(({ data, ...rest }) => ({ ...rest, data: Buffer.from(data).toString("hex") }))).toEqual(
      BATCH.requests.map(({ data, ...rest }) => ({ ...rest, dataLength: data?.length ?? 0, data: Buffer.from(data ?? []).toString("hex") })),
    );
  });
});

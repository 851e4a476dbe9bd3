import { describe, expect, it } from "vitest";
import { decodeIoReplyBatch, encodeIoReplyBatch } from "../../src/rpc/io-frames.js";
import { volumeService } from "../../src/rpc/proto.js";
import type { IoReplyWire } from "../../src/rpc/volume-wire.js";

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

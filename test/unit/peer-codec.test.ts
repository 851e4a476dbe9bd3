import { describe, expect, it } from "vitest";
import type { PeerMessage } from "../../src/core/messages.js";
import { encodeConfig } from "../../src/core/config.js";
import { REGION_DIRTY, asBlock, asClientId, asEpoch, asLsn, asNodeId, type VolumeConfig } from "../../src/core/types.js";
import { FrameError } from "../../src/rpc/frames.js";
import { PeerCodecError, decodePeerFrame, decodePeerMessage, encodePeerFrame } from "../../src/rpc/peer-codec.js";

/** Through the real wire: a frame, its header by proto-loader's serializer and deserializer. */
function roundTrip(msg: PeerMessage): PeerMessage {
  const back = decodePeerFrame(encodePeerFrame("vol1", msg));
  expect(back.volume).toBe("vol1");
  return back.msg;
}

const v = (epoch: number, lsn: number) => ({ epoch: asEpoch(epoch), lsn: asLsn(lsn) });
const data = new Uint8Array(4096).fill(7);
const config: VolumeConfig = { name: "vol1", blockSize: 4096, blockCount: 1024, replicas: [asNodeId("n1"), asNodeId("n2"), asNodeId("n4")], configVersion: 3, previousReplicas: [asNodeId("n1"), asNodeId("n2"), asNodeId("n3")] };
const learnerConfig: VolumeConfig = { name: "vol1", blockSize: 4096, blockCount: 1024, replicas: [asNodeId("n1"), asNodeId("n2"), asNodeId("n3")], configVersion: 2, replacement: { from: asNodeId("n3"), to: asNodeId("n4") } };

const MESSAGES: PeerMessage[] = [
  { type: "promise", epoch: asEpoch(3), clientId: asClientId("c1"), takeover: true, configVersion: 4 },
  { type: "promiseGranted", epoch: asEpoch(3), head: v(2, 5), commitLsn: asLsn(4), consistent: false, unsurePastHead: true, witnessHead: v(2, 4), sinceOlderLeaseTicks: null, config },
  { type: "promiseGranted", epoch: asEpoch(3), head: v(2, 5), commitLsn: asLsn(4), consistent: true, unsurePastHead: false, witnessHead: v(2, 5), sinceOlderLeaseTicks: 0, config: learnerConfig },
  { type: "promiseRefused", epoch: asEpoch(3), reason: "busy", promisedEpoch: asEpoch(3) },
  { type: "headProbe", epoch: asEpoch(3), seq: 1795 },
  { type: "regionVersions", epoch: asEpoch(3), appliedLsn: asLsn(9), first: 1024, versions: [v(2, 3), REGION_DIRTY, v(0, 0)], digests: null },
  { type: "regionVersions", epoch: asEpoch(3), appliedLsn: asLsn(9), first: 1024, versions: [v(2, 3), REGION_DIRTY, v(0, 0)], digests: [0xdeadbeef, 0, 1] },
  { type: "regionVersionsReply", epoch: asEpoch(3), followerStale: [1025], primaryStale: [] },
  { type: "regionDigestsReply", epoch: asEpoch(3), appliedLsn: asLsn(9), regions: [1024, 1026], digests: [0xffffffff, 0] },
  { type: "headReport", epoch: asEpoch(3), seq: 1795, head: v(2, 5), commitLsn: asLsn(4), consistent: false, unsurePastHead: true, heardPrimaryTicksAgo: null, appliedLsn: asLsn(4), regionsDigest: 0, configCommitted: false },
  { type: "headReport", epoch: asEpoch(3), seq: 1795, head: v(2, 5), commitLsn: asLsn(5), consistent: true, unsurePastHead: false, heardPrimaryTicksAgo: 0, appliedLsn: asLsn(5), regionsDigest: 0xdeadbeef, configCommitted: true },
  { type: "fetch", epoch: asEpoch(3), fromLsn: asLsn(1), toLsn: null },
  { type: "fetch", epoch: asEpoch(3), fromLsn: asLsn(1), toLsn: asLsn(9) },
  {
    type: "append",
    epoch: asEpoch(3),
    prev: v(2, 5),
    records: [
      { epoch: asEpoch(3), lsn: asLsn(6), kind: "write", block: asBlock(1), blockCount: 1, data, clientId: asClientId("c1"), clientSeq: 1 },
      { epoch: asEpoch(3), lsn: asLsn(7), kind: "trim", block: asBlock(2), blockCount: 3, data: null, clientId: asClientId("c1"), clientSeq: 2 },
      { epoch: asEpoch(3), lsn: asLsn(8), kind: "mountStart", block: asBlock(0), blockCount: 0, data: null, clientId: asClientId("c1"), clientSeq: 0 },
    ],
    commitLsn: asLsn(5),
    seq: 123456,
  },
  {
    type: "append",
    epoch: asEpoch(3),
    prev: v(3, 8),
    records: [{ epoch: asEpoch(3), lsn: asLsn(9), kind: "config", block: asBlock(0), blockCount: 0, data: encodeConfig(learnerConfig), clientId: asClientId("replivol:config"), clientSeq: 0 }],
    commitLsn: asLsn(8),
    seq: 123457,
  },
  { type: "appendReply", epoch: asEpoch(3), seq: 1, ok: true, matchLsn: asLsn(8), head: v(3, 8), commitLsn: asLsn(5), consistent: true },
  { type: "resyncBegin", epoch: asEpoch(3), snapshot: v(2, 5), sessions: [{ clientId: asClientId("c1"), clientSeq: 4, lsn: asLsn(5) }], seq: 7, config },
  { type: "resyncBeginReply", epoch: asEpoch(3), seq: 7, snapshot: v(2, 5), effectiveSnapshot: v(2, 5), regionVersions: [REGION_DIRTY, v(0, 0), v(2, 3)] },
  { type: "region", epoch: asEpoch(3), region: 2, data, blocks: null, version: v(2, 3), copiedAt: asLsn(5), seq: 1234 },
  { type: "region", epoch: asEpoch(3), region: 2, data, blocks: new Uint8Array([0x05, 0x80]), version: v(2, 3), copiedAt: asLsn(5), seq: 1235 },
  { type: "regionReply", epoch: asEpoch(3), region: 2, seq: 1234 },
  { type: "resyncDone", epoch: asEpoch(3), snapshot: v(2, 5), seq: 1234 },
  { type: "resyncDoneReply", epoch: asEpoch(3), snapshot: v(2, 5) },
  { type: "release", epoch: asEpoch(3) },
  { type: "stale", epoch: asEpoch(2), promisedEpoch: asEpoch(3), byReserved: true },
  { type: "blockFetch", epoch: asEpoch(3), seq: 4, block: asBlock(77) },
  { type: "corruptReport", epoch: asEpoch(3), blocks: [asBlock(1), asBlock(9)] },
  { type: "blockData", epoch: asEpoch(3), seq: 4, block: asBlock(77), appliedLsn: asLsn(12), data },
  { type: "blockData", epoch: asEpoch(3), seq: 5, block: asBlock(78), appliedLsn: asLsn(12), data: null },
];

describe("peer codec", () => {
  /** Bytes compared by content (they come back as Buffer views). */
  const plain = (x: unknown): unknown => {
    if (x instanceof Uint8Array) return { bytes: [...x] };
    if (Array.isArray(x)) return x.map(plain);
    if (typeof x === "object" && x !== null) return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, plain(y)]));
    return x;
  };

  it.each(MESSAGES.map((m) => [m.type, m] as const))("round-trips %s", (_type, msg) => {
    expect(plain(roundTrip(msg))).toEqual(plain(msg));
  });

  it.each([
    ["no body", { volume: "v" }],
    ["a negative epoch", { volume: "v", body: "release", release: { epoch: -1 } }],
    ["an unsafe integer", { volume: "v", body: "release", release: { epoch: 2 ** 60 } }],
    ["no version", { volume: "v", body: "resyncDone", resyncDone: { epoch: 1, snapshot: null } }],
    ["a gap in append records", { volume: "v", body: "append", append: { epoch: 1, prev: { epoch: 1, lsn: 1 }, commitLsn: 0, seq: 0, records: [{ epoch: 1, lsn: 3, kind: "RECORD_KIND_TRIM", block: 0, blockCount: 1, data: Buffer.alloc(0), clientId: "c", clientSeq: 1 }] } }],
    ["trim data", { volume: "v", body: "append", append: { epoch: 1, prev: { epoch: 1, lsn: 1 }, commitLsn: 0, seq: 0, records: [{ epoch: 1, lsn: 2, kind: "RECORD_KIND_TRIM", block: 0, blockCount: 1, data: Buffer.alloc(1), clientId: "c", clientSeq: 1 }] } }],
    ["an unknown record kind", { volume: "v", body: "append", append: { epoch: 1, prev: { epoch: 1, lsn: 1 }, commitLsn: 0, seq: 0, records: [{ epoch: 1, lsn: 2, kind: "RECORD_KIND_UNSPECIFIED", block: 0, blockCount: 1, data: Buffer.alloc(0), clientId: "c", clientSeq: 1 }] } }],
    ["fewer digests than versions", { volume: "v", body: "regionVersions", regionVersions: { epoch: 1, appliedLsn: 2, first: 0, versions: [{ epoch: 1, lsn: 1 }, { epoch: 1, lsn: 2 }], digests: [5] } }],
    ["a digest past 32 bits", { volume: "v", body: "regionDigestsReply", regionDigestsReply: { epoch: 1, appliedLsn: 2, regions: [0], digests: [2 ** 32] } }],
    ["a digest for no region", { volume: "v", body: "regionDigestsReply", regionDigestsReply: { epoch: 1, appliedLsn: 2, regions: [], digests: [7] } }],
  ])("refuses a message with %s", (_what, wire) => {
    expect(() => decodePeerMessage(wire)).toThrow(PeerCodecError);
  });

  it("keeps block bytes out of the protobuf header: they follow it, once each", () => {
    const append = MESSAGES.find((m) => m.type === "append");
    if (append === undefined) throw new Error("no append");
    const frame = encodePeerFrame("vol1", append);
    const headerBytes = frame.readUInt32LE(0);
    expect(headerBytes).toBeLessThan(200);
    expect(frame.length).toBe(4 + headerBytes + data.length);
    expect([...frame.subarray(4 + headerBytes)]).toEqual([...data]);
  });

  const region = encodePeerFrame("vol1", { type: "region", epoch: asEpoch(3), region: 2, data, blocks: null, version: v(2, 3), copiedAt: asLsn(5), seq: 1234 });
  it.each([
    ["no header length", Buffer.alloc(2)],
    ["a header longer than the frame", Buffer.from([0xff, 0xff, 0, 0, 1, 2])],
    ["a payload cut short", region.subarray(0, region.length - 1)],
    ["payload bytes no field claims", Buffer.concat([region, Buffer.alloc(1)])],
    ["a header that is not protobuf", Buffer.from([3, 0, 0, 0, 0xff, 0xff, 0xff])],
  ])("refuses a frame with %s", (_what, frame) => {
    expect(() => decodePeerFrame(frame)).toThrow(FrameError);
  });
});

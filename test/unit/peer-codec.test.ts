import { describe, expect, it } from "vitest";
import type { PeerMessage } from "../../src/core/messages.js";
import { REGION_DIRTY, asBlock, asClientId, asEpoch, asLsn } from "../../src/core/types.js";
import { PeerCodecError, decodePeerMessage, encodePeerMessage } from "../../src/rpc/peer-codec.js";
import { replicationService } from "../../src/rpc/proto.js";

const exchange = replicationService().service["Exchange"];

/** Through the real wire: proto-loader's serializer and deserializer. */
function roundTrip(msg: PeerMessage): PeerMessage {
  if (exchange === undefined) throw new Error("no Exchange");
  const bytes = exchange.requestSerialize(encodePeerMessage("vol1", msg));
  const back = decodePeerMessage(exchange.requestDeserialize(bytes));
  expect(back.volume).toBe("vol1");
  return back.msg;
}

const v = (epoch: number, lsn: number) => ({ epoch: asEpoch(epoch), lsn: asLsn(lsn) });
const data = new Uint8Array(4096).fill(7);

const MESSAGES: PeerMessage[] = [
  { type: "promise", epoch: asEpoch(3), clientId: asClientId("c1"), takeover: true },
  { type: "promiseGranted", epoch: asEpoch(3), head: v(2, 5), commitLsn: asLsn(4), consistent: false, unsurePastHead: true, witnessHead: v(2, 4), sinceOlderLeaseTicks: null },
  { type: "promiseGranted", epoch: asEpoch(3), head: v(2, 5), commitLsn: asLsn(4), consistent: true, unsurePastHead: false, witnessHead: v(2, 5), sinceOlderLeaseTicks: 0 },
  { type: "promiseRefused", epoch: asEpoch(3), reason: "busy", promisedEpoch: asEpoch(3) },
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
  { type: "appendReply", epoch: asEpoch(3), seq: 1, ok: true, matchLsn: asLsn(8), head: v(3, 8), commitLsn: asLsn(5), consistent: true },
  { type: "resyncBegin", epoch: asEpoch(3), snapshot: v(2, 5), sessions: [{ clientId: asClientId("c1"), clientSeq: 4, lsn: asLsn(5) }], seq: 7 },
  { type: "resyncBeginReply", epoch: asEpoch(3), seq: 7, snapshot: v(2, 5), effectiveSnapshot: v(2, 5), regionVersions: [REGION_DIRTY, v(0, 0), v(2, 3)] },
  { type: "region", epoch: asEpoch(3), region: 2, data, version: v(2, 3), copiedAt: asLsn(5) },
  { type: "regionReply", epoch: asEpoch(3), region: 2 },
  { type: "resyncDone", epoch: asEpoch(3), snapshot: v(2, 5) },
  { type: "resyncDoneReply", epoch: asEpoch(3), snapshot: v(2, 5) },
  { type: "release", epoch: asEpoch(3) },
  { type: "stale", epoch: asEpoch(2), promisedEpoch: asEpoch(3) },
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
  ])("refuses a message with %s", (_what, wire) => {
    expect(() => decodePeerMessage(wire)).toThrow(PeerCodecError);
  });
});

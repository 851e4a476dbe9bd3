import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import type { PeerMessage } from "../../src/core/messages.js";

const PEER_MESSAGE_TYPES = [
  "promise",
  "promiseGranted",
  "promiseRefused",
  "fetch",
  "fetchReply",
  "append",
  "appendReply",
  "resyncBegin",
  "resyncBeginReply",
  "region",
  "regionReply",
  "resyncDone",
  "resyncDoneReply",
  "release",
  "stale",
  "blockFetch",
  "blockData",
  "corruptReport",
  "headProbe",
  "headReport",
  "regionVersions",
  "regionVersionsReply",
  "regionDigestsReply",
] as const satisfies readonly PeerMessage["type"][];

// Fails to compile if the core gains a message this list (and so the proto) lacks.
type Missing = Exclude<PeerMessage["type"], (typeof PEER_MESSAGE_TYPES)[number]>;
const everyCoreMessageListed: [Missing] extends [never] ? true : never = true;

describe("proto/replication.proto", () => {
  const root = protobuf.loadSync(fileURLToPath(new URL("../../proto/replication.proto", import.meta.url)));
  const peer = root.lookupType("replivol.replication.v1.PeerMessage");

  it("has a field of PeerMessage.body for every message the core exchanges", () => {
    expect(everyCoreMessageListed).toBe(true);
    const body = peer.oneofs["body"];
    expect(body).toBeDefined();
    const fields = new Set(body?.oneof ?? []);
    // protobufjs names fields in camelCase: promise_granted is promiseGranted.
    for (const t of PEER_MESSAGE_TYPES) expect(fields, t).toContain(t);
    expect(fields.size).toBe(PEER_MESSAGE_TYPES.length);
  });

  it("round-trips an append header with its records (their bytes travel after it, as data_length says)", () => {
    const msg = peer.fromObject({
      volume: "vol1",
      append: { epoch: 7, prev: { epoch: 7, lsn: 41 }, records: [{ epoch: 7, lsn: 42, kind: 1, block: 3, blockCount: 1, dataLength: 4096, clientId: "c1", clientSeq: 9 }], commitLsn: 40, seq: 123 },
    });
    const back = peer.toObject(peer.decode(peer.encode(msg).finish()), { longs: Number }) as { append: { records: { lsn: number; dataLength: number }[] } };
    expect(back.append.records[0]?.lsn).toBe(42);
    expect(back.append.records[0]?.dataLength).toBe(4096);
  });
});

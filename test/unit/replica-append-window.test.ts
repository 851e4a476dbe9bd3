/**
 * A primary bounds what it has sent a follower and not heard back about,
 * in records and in bytes: a follower that stops acknowledging (slower than
 * the writes, or gone) is sent at most the byte window plus one message,
 * and is sent the rest as it acknowledges again.
 */
import { describe, expect, it } from "vitest";
import { RecordLog } from "../../src/core/log.js";
import { asBlock, asClientId, asEpoch, asLsn, VERSION_ZERO, type LogRecord, type NodeId } from "../../src/core/types.js";
import { activePrimary, ids } from "./core-net.js";

const [n1, , n3] = ids as [NodeId, NodeId, NodeId];

function rec(lsn: number, bytes: number): LogRecord {
  return { epoch: asEpoch(1), lsn: asLsn(lsn), kind: "write", block: asBlock(0), blockCount: 1, data: new Uint8Array(bytes), clientId: asClientId("c"), clientSeq: lsn };
}

describe("RecordLog.bytesBetween", () => {
  it("sums the payload of the held records in a range, through trims, truncations and resets", () => {
    const log = new RecordLog(VERSION_ZERO, [rec(1, 10), rec(2, 0), rec(3, 5), rec(4, 7)]);
    expect(log.bytesBetween(asLsn(1), asLsn(4))).toBe(22);
    expect(log.bytesBetween(asLsn(2), asLsn(3))).toBe(5);
    expect(log.bytesBetween(asLsn(4), asLsn(3))).toBe(0);
    expect(log.bytesBetween(asLsn(0), asLsn(99))).toBe(22);
    log.trimThrough(asLsn(2));
    expect(log.bytesBetween(asLsn(1), asLsn(4))).toBe(12);
    expect(log.bytesBetween(asLsn(3), asLsn(3))).toBe(5);
    log.truncateAfter(asLsn(3));
    log.append([rec(4, 100), rec(5, 1)]);
    expect(log.bytesBetween(asLsn(3), asLsn(5))).toBe(106);
    expect(log.bytesBetween(asLsn(5), asLsn(5))).toBe(1);
    log.reset({ epoch: asEpoch(1), lsn: asLsn(9) });
    expect(log.bytesBetween(asLsn(1), asLsn(99))).toBe(0);
    log.append([rec(10, 3)]);
    expect(log.bytesBetween(asLsn(10), asLsn(10))).toBe(3);
    expect(log.bytes()).toBe(3);
  });
});

describe("the primary's append window", () => {
  it("sends a silent follower at most the byte window and one message more, then the rest as it answers", () => {
    // 8-byte blocks, one record a message: a window of 40 bytes is five records.
    const net = activePrimary(undefined, { appendBytesInFlightMax: 40, appendRecordsPerMessageMax: 1 });
    net.down.add(n3);
    const sentToN3 = (): number[] =>
      net.actions.flatMap(({ at, a }) => (at === n1 && a.type === "send" && a.to === n3 && a.msg.type === "append" ? a.msg.records.map((r) => r.lsn as number) : []));
    const before = new Set(sentToN3());
    for (let seq = 1; seq <= 20; seq++) {
      net.post(n1, { type: "request", reqId: 100 + seq, req: { type: "write", clientId: asClientId("app"), clientSeq: seq, kind: "write", block: asBlock(seq % 8), blockCount: 1, data: new Uint8Array(8).fill(seq) } });
      net.run();
    }
    net.tick(5);
    // Every write committed (n1 and n2 are a majority).
    for (let seq = 1; seq <= 20; seq++) expect(net.replies.get(`${n1}:${100 + seq}`)).toMatchObject({ ok: true });
    const lsns = new Set(sentToN3().filter((l) => !before.has(l)));
    expect(lsns.size).toBe(5);
    // n3 is reachable again: after a resend (the window's messages were lost) it is sent every record it lacks.
    net.down.delete(n3);
    net.tick(2_000);
    const head = net.core(n1).status().head.lsn;
    expect(net.core(n3).status().head.lsn).toBe(head);
  });
});

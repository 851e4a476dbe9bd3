import { describe, expect, it } from "vitest";
import type { AppendRequest, PeerMessage } from "../../src/core/messages.js";
import { asBlock, asClientId, asEpoch, asLsn, type LogRecord } from "../../src/core/types.js";
import { coalesceAppends } from "../../src/rpc/peer-transport.js";

const rec = (lsn: number, epoch = 2): LogRecord => ({
  epoch: asEpoch(epoch),
  lsn: asLsn(lsn),
  kind: "write",
  block: asBlock(lsn),
  blockCount: 1,
  data: new Uint8Array(4096),
  clientId: asClientId("c"),
  clientSeq: lsn,
});

const append = (prevLsn: number, lsns: number[], commit: number, seq: number, epoch = 2): AppendRequest => ({
  type: "append",
  epoch: asEpoch(epoch),
  prev: { epoch: asEpoch(2), lsn: asLsn(prevLsn) },
  records: lsns.map((l) => rec(l)),
  commitLsn: asLsn(commit),
  seq,
});

const q = (msg: PeerMessage, volume = "v") => ({ volume, msg });
const lsnsOf = (m: PeerMessage): number[] => (m.type === "append" ? m.records.map((r) => r.lsn) : []);

describe("coalesceAppends", () => {
  it("merges appends that follow one another into one, with the later commit point and send time", () => {
    const queued = [q(append(4, [5], 3, 100)), q(append(5, [6], 4, 101)), q(append(6, [7, 8], 5, 102))];
    const out = coalesceAppends(queued);
    expect(queued.map((x) => lsnsOf(x.msg))).toEqual([[5], [6], [7, 8]]);
    expect(out).toHaveLength(1);
    const m = out[0]?.msg as AppendRequest;
    expect(lsnsOf(m)).toEqual([5, 6, 7, 8]);
    expect(m.prev.lsn).toBe(4);
    expect(m.commitLsn).toBe(5);
    expect(m.seq).toBe(102);
  });

  it("folds a heartbeat into the append that follows it", () => {
    const out = coalesceAppends([q(append(4, [], 3, 100)), q(append(4, [5], 3, 101))]);
    expect(out.map((x) => lsnsOf(x.msg))).toEqual([[5]]);
  });

  it.each([
    ["a gap", [q(append(4, [5], 3, 1)), q(append(6, [7], 3, 2))]],
    ["a resend from earlier", [q(append(4, [5, 6], 3, 1)), q(append(4, [5], 3, 2))]],
    ["another volume", [q(append(4, [5], 3, 1)), q(append(5, [6], 3, 2), "w")]],
    ["another epoch", [q(append(4, [5], 3, 1)), q(append(5, [6], 3, 2, 3))]],
    ["another message between", [q(append(4, [5], 3, 1)), q({ type: "release", epoch: asEpoch(2) }), q(append(5, [6], 3, 2))]],
  ])("keeps appends apart across %s", (_what, queue) => {
    expect(coalesceAppends(queue)).toHaveLength(queue.length);
  });

  it("keeps a merged append within the bytes of one message", () => {
    const queue = Array.from({ length: 600 }, (_, i) => q(append(i, [i + 1], 0, i)));
    const out = coalesceAppends(queue);
    expect(out.length).toBeGreaterThan(2);
    for (const x of out) expect(lsnsOf(x.msg).length).toBeLessThanOrEqual(256);
    expect(out.flatMap((x) => lsnsOf(x.msg))).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
  });
});

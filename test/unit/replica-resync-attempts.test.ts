/**
 * A primary restarts a stalled region resync as a new attempt (a new
 * ResyncBegin.seq). A reply to a region copy of an earlier attempt, arriving
 * late, must not count for the new one: that copy may never be installed in
 * it, and counting it would let the resync end with the region not copied.
 */
import { describe, expect, it } from "vitest";
import type { PeerMessage } from "../../src/core/messages.js";
import { asBlock, asClientId, asEpoch, type NodeId } from "../../src/core/types.js";
import { activePrimary, ids } from "./core-net.js";

const [n1, , n3] = ids as [NodeId, NodeId, NodeId];

describe("a primary's region resync of a follower", () => {
  it("counts a region reply only of the attempt under way", () => {
    // Each core keeps 2 applied records: n3, away during 6 writes, needs a region resync.
    const net = activePrimary(2);
    net.down.add(n3);
    for (let seq = 1; seq <= 6; seq++) {
      net.post(n1, { type: "request", reqId: 100 + seq, req: { type: "write", clientId: asClientId("app"), clientSeq: seq, kind: "write", block: asBlock(seq % 4), blockCount: 1, data: new Uint8Array(8).fill(seq) } });
      net.run();
      net.tick(5);
      expect(net.replies.get(`n1:${100 + seq}`)).toMatchObject({ ok: true });
    }
    net.down.delete(n3);
    const copied = (): number => net.core(n1).status().followers.find((f) => f.node === n3)?.regionsCopied ?? -1;
    const sentRegions = (): { region: number; seq: number }[] =>
      net.actions.flatMap(({ at, a }) => (at === n1 && a.type === "sendRegion" && a.to === n3 ? [{ region: a.region, seq: a.seq }] : []));
    for (let i = 0; i < 2000 && sentRegions().length === 0; i++) net.tick(1);
    const [copy] = sentRegions();
    if (copy === undefined) throw new Error("no region copy was sent");
    // Region copies are never delivered here: the attempt stalls in flight. A reply of another attempt is not counted...
    const reply = (seq: number): PeerMessage => ({ type: "regionReply", epoch: asEpoch(1), region: copy.region, seq });
    net.core(n1).step({ type: "message", from: n3, msg: reply(copy.seq - 1) });
    expect(copied()).toBe(0);
    // ...one of this attempt is.
    net.core(n1).step({ type: "message", from: n3, msg: reply(copy.seq) });
    expect(copied()).toBe(1);
  });
});

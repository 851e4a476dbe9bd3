/**
 * Attempts of a region resync. A primary restarts a stalled region resync as
 * a new attempt (a new ResyncBegin.seq). A reply to a region copy of an
 * earlier attempt, arriving late, must not count for the new one: that copy
 * may never be installed in it, and counting it would let the resync end
 * with the region not copied. An unanswered begin goes again as it is (the
 * same attempt), and its target answers a copy of a begin it took without
 * resetting a second time, and ignores an older attempt's.
 */
import { describe, expect, it } from "vitest";
import { limits } from "../../src/core/limits.js";
import type { PeerMessage, ResyncBegin } from "../../src/core/messages.js";
import { asBlock, asClientId, asEpoch, type NodeId } from "../../src/core/types.js";
import { activePrimary, ids, type Net } from "./core-net.js";

const [n1, , n3] = ids as [NodeId, NodeId, NodeId];
const RESEND_TICKS = limits.heartbeatMs * 2;

/** n1 the primary; n3 away during 6 writes, past what each core keeps (2 applied records): it needs a region resync. */
function followerAway(): Net {
  const net = activePrimary(2);
  net.down.add(n3);
  for (let seq = 1; seq <= 6; seq++) {
    net.post(n1, { type: "request", reqId: 100 + seq, req: { type: "write", clientId: asClientId("app"), clientSeq: seq, kind: "write", block: asBlock(seq % 4), blockCount: 1, data: new Uint8Array(8).fill(seq) } });
    net.run();
    net.tick(5);
    expect(net.replies.get(`n1:${100 + seq}`)).toMatchObject({ ok: true });
  }
  return net;
}

function beginsTo(net: Net, to: NodeId): ResyncBegin[] {
  return net.actions.flatMap(({ at, a }) => (at === n1 && a.type === "send" && a.to === to && a.msg.type === "resyncBegin" ? [a.msg] : []));
}

function actionsOf(net: Net, at: NodeId, type: string): number {
  return net.actions.filter((x) => x.at === at && (x.a.type === type || (x.a.type === "send" && x.a.msg.type === type))).length;
}

describe("a primary's region resync of a follower", () => {
  it("sends an unanswered begin again, the same attempt, until the target answers", () => {
    const net = followerAway();
    for (let i = 0; i < 2000 && beginsTo(net, n3).length === 0; i++) net.tick(1);
    const [first] = beginsTo(net, n3);
    if (first === undefined) throw new Error("no resync began");
    // Lost while n3 is away: sent again every resend interval, as it was (not a new attempt, which waits 4 of them).
    net.tick(RESEND_TICKS * 2 + 10);
    const sent = beginsTo(net, n3);
    expect(sent.length).toBe(3);
    for (const b of sent) expect(b).toEqual(first);
    // n3 is back: the next copy of the same attempt reaches it, it answers, and regions go out.
    net.down.delete(n3);
    for (let i = 0; i < RESEND_TICKS * 2 && actionsOf(net, n1, "sendRegion") === 0; i++) net.tick(1);
    expect(actionsOf(net, n1, "sendRegion")).toBeGreaterThan(0);
    expect(new Set(beginsTo(net, n3).map((b) => b.seq))).toEqual(new Set([first.seq]));
  });

  it("answers a copy of a begin it took again, without resetting twice, and ignores an older attempt's", () => {
    const net = followerAway();
    net.down.delete(n3);
    for (let i = 0; i < 2000 && actionsOf(net, n3, "resyncBeginReply") === 0; i++) net.tick(1);
    const [begin] = beginsTo(net, n3);
    if (begin === undefined) throw new Error("no resync began");
    expect(actionsOf(net, n3, "resetLogForResync")).toBe(1);
    expect(actionsOf(net, n3, "resyncBeginReply")).toBe(1);
    // A copy (a resend crossing the answer): answered again, the same answer, no second reset.
    net.post(n3, { type: "message", from: n1, msg: begin });
    net.run();
    expect(actionsOf(net, n3, "resetLogForResync")).toBe(1);
    expect(actionsOf(net, n3, "resyncBeginReply")).toBe(2);
    // An older attempt's, delayed: nothing at all.
    net.post(n3, { type: "message", from: n1, msg: { ...begin, seq: begin.seq - 1 } });
    net.run();
    expect(actionsOf(net, n3, "resetLogForResync")).toBe(1);
    expect(actionsOf(net, n3, "resyncBeginReply")).toBe(2);
  });

  it("counts a region reply only of the attempt under way", () => {
    const net = followerAway();
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

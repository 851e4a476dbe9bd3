/**
 * Scrub across replicas: when a follower reports that the primary's own copy
 * of a region is older than its own (the primary lost a write), the primary
 * repairs those blocks from that follower's copy only. Another follower's
 * copy may be as old as the primary's: asking it would "repair" the region
 * back to the lost state. With no copy from the reporter, the repair fails
 * rather than turn to anyone else. Nor does it bring the reporter's copy
 * forward by the shortcut of its own region version when its log no longer
 * holds the records after the copy's applied point: that version is the
 * stale one.
 */
import { describe, expect, it } from "vitest";
import type { CoreAction, PeerMessage } from "../../src/core/messages.js";
import { asBlock, asClientId, asEpoch, asLsn, type NodeId } from "../../src/core/types.js";
import { activePrimary, ids } from "./core-net.js";

const [n1, , n3] = ids as [NodeId, NodeId, NodeId];

const fetches = (actions: CoreAction[]): { to: NodeId; block: number; seq: number }[] =>
  actions.flatMap((a) => (a.type === "send" && a.msg.type === "blockFetch" ? [{ to: a.to, block: a.msg.block, seq: a.msg.seq }] : []));
const ownReads = (actions: CoreAction[]): number => actions.filter((a) => a.type === "sendBlock").length;

describe("a primary whose own region is older than a follower's", () => {
  it("asks only the follower that reported it, and no one else when that copy is missing", () => {
    const net = activePrimary();
    const primary = net.core(n1);
    const report: PeerMessage = { type: "regionVersionsReply", epoch: asEpoch(1), followerStale: [], primaryStale: [0] };
    const asked = primary.step({ type: "message", from: n3, msg: report });
    const first = fetches(asked);
    // Region 0 is blocks 0-3 (regionBlocks 4): each fetched from n3, none from n2 or the primary's own copy.
    expect(first.map((f) => f.block).sort()).toEqual([0, 1, 2, 3]);
    expect(new Set(first.map((f) => f.to))).toEqual(new Set([n3]));
    expect(ownReads(asked)).toBe(0);

    // n3 has no copy to give: the repair gives up; n2 is never asked.
    const after = first.flatMap((f) =>
      primary.step({ type: "message", from: n3, msg: { type: "blockData", epoch: asEpoch(1), seq: f.seq, block: asBlock(f.block), appliedLsn: asLsn(0), data: null } }),
    );
    expect(fetches(after)).toEqual([]);
    expect(ownReads(after)).toBe(0);
    expect(primary.status().repairsFailed).toBe(4);
  });

  it("does not bring the reporter's copy forward by its own (stale) region version when its log was trimmed", () => {
    // Each core keeps 2 applied records: the writes below (all to region 1) leave the log's start past lsn 2.
    const net = activePrimary(2);
    for (let seq = 1; seq <= 6; seq++) {
      net.post(n1, { type: "request", reqId: 100 + seq, req: { type: "write", clientId: asClientId("app"), clientSeq: seq, kind: "write", block: asBlock(4 + (seq % 4)), blockCount: 1, data: new Uint8Array(8).fill(seq) } });
      net.run();
      net.tick(5);
      expect(net.replies.get(`n1:${100 + seq}`)).toMatchObject({ ok: true });
    }
    const primary = net.core(n1);
    const report: PeerMessage = { type: "regionVersionsReply", epoch: asEpoch(1), followerStale: [], primaryStale: [0] };
    const first = fetches(primary.step({ type: "message", from: n3, msg: report }));
    expect(first).toHaveLength(4);
    // n3's copies as of lsn 1: records 2 and on are no longer in the primary's log. Its region 0 says no
    // record touched it since (version zero), but that is the version that is stale: no repair from it.
    const after = first.flatMap((f) =>
      primary.step({ type: "message", from: n3, msg: { type: "blockData", epoch: asEpoch(1), seq: f.seq, block: asBlock(f.block), appliedLsn: asLsn(1), data: new Uint8Array(8).fill(9) } }),
    );
    expect(after.filter((a) => a.type === "appendLog")).toEqual([]);
    expect(fetches(after)).toEqual([]);
    expect(primary.status()).toMatchObject({ repairsDone: 0, repairsFailed: 4 });
  });
});

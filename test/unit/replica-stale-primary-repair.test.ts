/**
 * Scrub across replicas: when a follower reports that the primary's own copy
 * of a region is older than its own (the primary lost a write), the primary
 * repairs those blocks from that follower's copy only. Another follower's
 * copy may be as old as the primary's: asking it would "repair" the region
 * back to the lost state. With no copy from the reporter, the repair fails
 * rather than turn to anyone else.
 */
import { describe, expect, it } from "vitest";
import type { CoreAction, PeerMessage } from "../../src/core/messages.js";
import { asBlock, asEpoch, asLsn, type NodeId } from "../../src/core/types.js";
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
});

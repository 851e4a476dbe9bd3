/**
 * A primary displaced by a node's own mount (idle sync, an operator's: a
 * reserved client id) steps down with NO_QUORUM, so its client fails over
 * and mounts again; displaced by another client's mount it is FENCED. Both
 * ways a primary learns of the newer epoch: a follower's StaleEpoch answer
 * (by_reserved) and a promise request of the newer mount.
 *
 * Three cores on a synchronous in-memory network (core-net.ts).
 */
import { describe, expect, it } from "vitest";
import type { PeerMessage } from "../../src/core/messages.js";
import { SYNC_CLIENT_ID } from "../../src/core/replica.js";
import { asBlock, asClientId, asEpoch, type ClientId, type NodeId } from "../../src/core/types.js";
import { activePrimary, ids } from "./core-net.js";

describe("a primary displaced by a newer epoch", () => {
  const stale = (byReserved: boolean): PeerMessage => ({ type: "stale", epoch: asEpoch(1), promisedEpoch: asEpoch(2), byReserved });
  const cases: [string, boolean, string][] = [
    ["a node's own mount (by_reserved)", true, "NO_QUORUM"],
    ["another client's mount", false, "FENCED"],
  ];
  for (const [what, byReserved, code] of cases) {
    it(`steps down with ${code} when a follower answers that it promised ${what}`, () => {
      const net = activePrimary();
      const n1 = ids[0] as NodeId;
      // A write waiting for its quorum fails with the same code; the mount's end says it too.
      net.post(n1, { type: "request", reqId: 2, req: { type: "write", clientId: asClientId("app"), clientSeq: 1, kind: "write", block: asBlock(0), blockCount: 1, data: new Uint8Array(8).fill(1) } });
      net.post(n1, { type: "message", from: ids[1] as NodeId, msg: stale(byReserved) });
      net.run();
      expect(net.replies.get("n1:2")).toMatchObject({ ok: false, code });
      expect(net.core(n1).endedMount(asEpoch(1))).toMatchObject({ code });
      expect(net.core(n1).isActivePrimary()).toBe(false);
    });
  }

  const mounts: [string, ClientId, string][] = [
    ["a node's own mount", SYNC_CLIENT_ID, "NO_QUORUM"],
    ["another client's takeover", asClientId("other"), "FENCED"],
  ];
  for (const [what, clientId, code] of mounts) {
    it(`steps down with ${code} when ${what} asks it for a promise`, () => {
      const net = activePrimary();
      const n1 = ids[0] as NodeId;
      // The newer mount through n2; n1 hears its promise request (and promises: a newer epoch).
      net.post(ids[1] as NodeId, { type: "request", reqId: 7, req: { type: "mount", clientId, takeover: true } });
      net.run();
      net.tick(20);
      expect(net.core(n1).isActivePrimary()).toBe(false);
      expect(net.core(n1).endedMount(asEpoch(1))).toMatchObject({ code });
    });
  }
});

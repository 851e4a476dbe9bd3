/**
 * A primary displaced by a node's own mount (idle sync, an operator's: a
 * reserved client id) steps down with NO_QUORUM, so its client fails over
 * and mounts again; displaced by another client's mount it is FENCED. Both
 * ways a primary learns of the newer epoch: a follower's StaleEpoch answer
 * (by_reserved) and a promise request of the newer mount.
 *
 * Three cores on a synchronous in-memory network; every persist is durable
 * at once.
 */
import { describe, expect, it } from "vitest";
import type { CoreAction, CoreEvent, PeerMessage } from "../../src/core/messages.js";
import { ReplicaCore, SYNC_CLIENT_ID } from "../../src/core/replica.js";
import { asBlock, asClientId, asEpoch, asNodeId, asTicks, asLsn, VERSION_ZERO, type ClientId, type NodeId } from "../../src/core/types.js";

type AnyResult = Extract<CoreAction, { type: "reply" }>["result"];

const ids = [asNodeId("n1"), asNodeId("n2"), asNodeId("n3")];
const config = { name: "vol", blockSize: 8, blockCount: 8, replicas: ids, configVersion: 1 };

class Net {
  readonly cores = new Map<NodeId, ReplicaCore>();
  readonly replies = new Map<string, AnyResult>();
  private readonly queue: { to: NodeId; ev: CoreEvent }[] = [];
  now = 0;

  constructor() {
    for (const id of ids) {
      this.cores.set(
        id,
        new ReplicaCore(
          { nodeId: id, config, regionBlocks: 4 },
          { promisedEpoch: asEpoch(0), commitLsn: asLsn(0), consistent: true, consistentThrough: null, unsurePastHead: false, sessions: [], logBase: VERSION_ZERO, records: [], appliedLsn: asLsn(0), regionVersions: [VERSION_ZERO, VERSION_ZERO], now: asTicks(0) },
        ),
      );
    }
  }

  core(id: NodeId): ReplicaCore {
    const c = this.cores.get(id);
    if (c === undefined) throw new Error(`no ${id}`);
    return c;
  }

  post(to: NodeId, ev: CoreEvent): void {
    this.queue.push({ to, ev });
  }

  /** Delivers every event and what it causes, in order (bounded). */
  run(): void {
    for (let n = 0; n < 10_000 && this.queue.length > 0; n++) {
      const { to, ev } = this.queue.shift() as { to: NodeId; ev: CoreEvent };
      for (const a of this.core(to).step(ev)) this.act(to, a);
    }
    expect(this.queue).toEqual([]);
  }

  /** Ticks every core `ms` times, 1 ms apart, running the network after each. */
  tick(ms: number): void {
    for (let i = 0; i < ms; i++) {
      this.now++;
      for (const id of ids) this.post(id, { type: "tick", now: asTicks(this.now) });
      this.run();
    }
  }

  private act(at: NodeId, a: CoreAction): void {
    if (a.type === "send") this.post(a.to, { type: "message", from: at, msg: a.msg });
    else if (a.type === "reply") this.replies.set(`${at}:${a.reqId}`, a.result);
    else if ("token" in a) this.post(at, { type: "durable", token: a.token });
  }

  /** A mount through `node`; ticks until it is answered. */
  mount(node: NodeId, reqId: number, clientId: ClientId, takeover = false): AnyResult {
    this.post(node, { type: "request", reqId, req: { type: "mount", clientId, takeover } });
    this.run();
    for (let i = 0; i < 2000 && !this.replies.has(`${node}:${reqId}`); i++) this.tick(1);
    const r = this.replies.get(`${node}:${reqId}`);
    if (r === undefined) throw new Error(`mount ${reqId} through ${node} not answered`);
    return r;
  }
}

function activePrimary(): Net {
  const net = new Net();
  expect(net.mount(ids[0] as NodeId, 1, asClientId("app"))).toMatchObject({ ok: true, epoch: 1 });
  net.tick(50);
  return net;
}

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

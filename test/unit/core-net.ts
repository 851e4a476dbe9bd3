/**
 * Three replica cores on a synchronous in-memory network, for tests of
 * rules that take a whole replica set (a primary and its followers): every
 * message is delivered in order (unless a node is down), every persist is
 * durable at once. Block data is not modelled: region copies (sendRegion)
 * are recorded, never sent.
 */
import { expect } from "vitest";
import type { CoreAction, CoreEvent } from "../../src/core/messages.js";
import { ReplicaCore, type ReplicaCoreOptions } from "../../src/core/replica.js";
import { asClientId, asEpoch, asNodeId, asTicks, asLsn, VERSION_ZERO, type ClientId, type NodeId } from "../../src/core/types.js";

export type AnyResult = Extract<CoreAction, { type: "reply" }>["result"];

export const ids = [asNodeId("n1"), asNodeId("n2"), asNodeId("n3")];
export const config = { name: "vol", blockSize: 8, blockCount: 8, replicas: ids, configVersion: 1 };

export class Net {
  readonly cores = new Map<NodeId, ReplicaCore>();
  readonly replies = new Map<string, AnyResult>();
  private readonly queue: { to: NodeId; ev: CoreEvent }[] = [];
  now = 0;
  /** Nodes cut off: nothing they send or are sent is delivered. */
  readonly down = new Set<NodeId>();
  /** Every action of every core, in order. */
  readonly actions: { at: NodeId; a: CoreAction }[] = [];

  /** `logRetainedRecordsMax`: how many applied records each core keeps for catch-up; `options`: more of every core's options. */
  constructor(logRetainedRecordsMax?: number, options: Partial<ReplicaCoreOptions> = {}) {
    for (const id of ids) {
      this.cores.set(
        id,
        new ReplicaCore(
          { ...options, nodeId: id, config, regionBlocks: 4, ...(logRetainedRecordsMax === undefined ? {} : { logRetainedRecordsMax }) },
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
    this.actions.push({ at, a });
    if (a.type === "send") {
      if (!this.down.has(at) && !this.down.has(a.to)) this.post(a.to, { type: "message", from: at, msg: a.msg });
    }
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

/** n1 the active primary of client "app", epoch 1. */
export function activePrimary(logRetainedRecordsMax?: number, options: Partial<ReplicaCoreOptions> = {}): Net {
  const net = new Net(logRetainedRecordsMax, options);
  expect(net.mount(ids[0] as NodeId, 1, asClientId("app"))).toMatchObject({ ok: true, epoch: 1 });
  net.tick(50);
  return net;
}

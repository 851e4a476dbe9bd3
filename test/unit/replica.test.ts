import { describe, expect, it } from "vitest";
import type { CoreAction, PeerMessage } from "../../src/core/messages.js";
import { ReplicaCore } from "../../src/core/replica.js";
import { asBlock, asClientId, asEpoch, asLsn, asNodeId, asTicks, VERSION_ZERO, type LogRecord, type Version } from "../../src/core/types.js";

const n1 = asNodeId("n1");
const n2 = asNodeId("n2");
const n3 = asNodeId("n3");
const config = { name: "vol", blockSize: 8, blockCount: 8, replicas: [n1, n2, n3], configVersion: 1 };
const v = (e: number, l: number): Version => ({ epoch: asEpoch(e), lsn: asLsn(l) });

function rec(epoch: number, lsn: number, block = 0): LogRecord {
  return { epoch: asEpoch(epoch), lsn: asLsn(lsn), kind: "write", block: asBlock(block), blockCount: 1, data: new Uint8Array(8).fill(lsn), clientId: asClientId("c"), clientSeq: lsn };
}

/** A follower on n2 whose persists all become durable when asked. */
function follower() {
  const core = new ReplicaCore(
    { nodeId: n2, config, regionBlocks: 4 },
    { promisedEpoch: asEpoch(0), commitLsn: asLsn(0), consistent: true, consistentThrough: null, unsurePastHead: false, sessions: [], logBase: VERSION_ZERO, records: [], appliedLsn: asLsn(0), regionVersions: [VERSION_ZERO, VERSION_ZERO], now: asTicks(0) },
  );
  let pending: number[] = [];
  const step = (ev: Parameters<ReplicaCore["step"]>[0]): CoreAction[] => {
    const out = core.step(ev);
    for (const a of out) if ("token" in a) pending.push(a.token);
    return out;
  };
  const durable = (): CoreAction[] => {
    const out: CoreAction[] = [];
    while (pending.length > 0) {
      const t = pending;
      pending = [];
      for (const token of t) out.push(...step({ type: "durable", token }));
    }
    return out;
  };
  const msg = (from: typeof n1, m: PeerMessage): CoreAction[] => step({ type: "message", from, msg: m });
  return { core, step, durable, msg };
}

const sent = (actions: CoreAction[]): PeerMessage[] => actions.flatMap((a) => (a.type === "send" ? [a.msg] : []));
const promise = (epoch: number, client = "a", takeover = false): PeerMessage => ({ type: "promise", epoch: asEpoch(epoch), clientId: asClientId(client), takeover, configVersion: 1 });
const append = (epoch: number, prev: Version, records: LogRecord[], commitLsn = 0): PeerMessage => ({ type: "append", epoch: asEpoch(epoch), prev, records, commitLsn: asLsn(commitLsn), seq: 1 });

describe("a replica's promise (rule 1)", () => {
  it("persists a newer epoch before it answers", () => {
    const r = follower();
    const first = r.msg(n1, promise(1));
    expect(first).toContainEqual(expect.objectContaining({ type: "persistSuperblock", patch: { promisedEpoch: 1 } }));
    expect(sent(first)).toEqual([]);
    expect(sent(r.durable())).toEqual([expect.objectContaining({ type: "promiseGranted", epoch: 1, head: VERSION_ZERO, consistent: true })]);
  });

  const refusals: [string, (r: ReturnType<typeof follower>) => CoreAction[], string][] = [
    ["an older epoch", (r) => r.msg(n3, promise(1)), "stale"],
    ["the same epoch from another candidate", (r) => r.msg(n3, promise(2)), "stale"],
    ["another client's epoch while the lease is live", (r) => r.msg(n3, promise(3, "b")), "busy"],
  ];
  for (const [what, act, reason] of refusals) {
    it(`refuses ${what}`, () => {
      const r = follower();
      r.msg(n1, promise(2));
      r.durable();
      r.msg(n1, append(2, VERSION_ZERO, []));
      r.durable();
      expect(sent(act(r))).toEqual([expect.objectContaining({ type: "promiseRefused", reason, promisedEpoch: 2 })]);
    });
  }

  const grants: [string, PeerMessage][] = [
    ["a takeover", promise(3, "b", true)],
    ["the same client failing over", promise(3, "a")],
  ];
  for (const [what, m] of grants) {
    it(`grants ${what} despite a live lease, and reports how long ago it answered the old primary`, () => {
      const r = follower();
      r.msg(n1, promise(2));
      r.durable();
      r.msg(n1, append(2, VERSION_ZERO, []));
      r.step({ type: "tick", now: asTicks(40) });
      r.msg(n3, m);
      expect(sent(r.durable())).toContainEqual(expect.objectContaining({ type: "promiseGranted", epoch: 3, sinceOlderLeaseTicks: 40 }));
    });
  }
});

describe("a replica's append (rules 4-6)", () => {
  function promised() {
    const r = follower();
    r.msg(n1, promise(1));
    r.durable();
    return r;
  }

  it("refuses an older epoch with STALE_EPOCH(current)", () => {
    const r = promised();
    r.msg(n3, promise(2));
    r.durable();
    expect(sent(r.msg(n1, append(1, VERSION_ZERO, [rec(1, 1)])))).toEqual([{ type: "stale", epoch: 1, promisedEpoch: 2, byReserved: false }]);
  });

  it("answers a gap with its head so the primary can catch it up", () => {
    const r = promised();
    const actions = [...r.msg(n1, append(1, v(1, 5), [rec(1, 6)])), ...r.durable()];
    expect(sent(actions)).toEqual([expect.objectContaining({ type: "appendReply", ok: false, head: VERSION_ZERO })]);
  });

  it("acknowledges only once the records are durable", () => {
    const r = promised();
    const actions = r.msg(n1, append(1, VERSION_ZERO, [rec(1, 1), rec(1, 2)]));
    expect(actions).toContainEqual(expect.objectContaining({ type: "appendLog" }));
    expect(sent(actions)).toEqual([]);
    expect(sent(r.durable())).toEqual([expect.objectContaining({ type: "appendReply", ok: true, matchLsn: 2, head: v(1, 2) })]);
  });

  it("applies only records that are committed and durable", () => {
    const r = promised();
    r.msg(n1, append(1, VERSION_ZERO, [rec(1, 1), rec(1, 2), rec(1, 3)], 2));
    const applied = r.durable().filter((a) => a.type === "apply");
    expect(applied).toEqual([{ type: "apply", throughLsn: 2 }]);
  });

  it("drops a divergent uncommitted tail from the log, never from the data", () => {
    const r = promised();
    r.msg(n1, append(1, VERSION_ZERO, [rec(1, 1), rec(1, 2), rec(1, 3)], 1));
    r.durable();
    r.msg(n3, promise(2));
    r.durable();
    const actions = r.msg(n3, append(2, v(1, 1), [rec(2, 2)]));
    expect(actions.filter((a) => a.type === "truncateLog" || a.type === "appendLog").map((a) => a.type)).toEqual(["truncateLog", "appendLog"]);
    expect(actions).toContainEqual(expect.objectContaining({ type: "truncateLog", afterLsn: 1 }));
    expect(sent(r.durable())).toEqual([expect.objectContaining({ type: "appendReply", ok: true, matchLsn: 2, head: v(2, 2) })]);
  });

  const malformed: [string, PeerMessage][] = [
    ["a gap between records", append(1, VERSION_ZERO, [rec(1, 1), rec(1, 3)])],
    ["a record that does not follow prev", append(1, v(1, 2), [rec(1, 5)])],
    ["a record of a newer epoch than the message", append(1, VERSION_ZERO, [rec(2, 1)])],
    ["epochs going back", append(1, v(1, 0), [rec(1, 1), { ...rec(0, 2), epoch: asEpoch(0) }])],
  ];
  for (const [what, m] of malformed) {
    it(`drops an append with ${what}, changing nothing`, () => {
      const r = promised();
      const actions = r.msg(n1, m);
      expect(actions.filter((a) => a.type !== "trace")).toEqual([]);
      expect(r.core.status().head).toEqual(VERSION_ZERO);
    });
  }

  it("never answers the old primary once it promised a newer epoch", () => {
    const r = promised();
    r.msg(n1, append(1, VERSION_ZERO, [rec(1, 1)]));
    r.msg(n3, promise(2));
    const replies = sent(r.durable()).filter((m) => m.type === "appendReply");
    expect(replies).toEqual([]);
  });
});

describe("a region resync target (rule 7)", () => {
  const begin = (seq: number, snapshot: Version): PeerMessage => ({ type: "resyncBegin", epoch: asEpoch(2), snapshot, sessions: [], seq, config });
  const done = (seq: number, snapshot: Version): PeerMessage => ({ type: "resyncDone", epoch: asEpoch(2), snapshot, seq });
  const marks = (actions: CoreAction[]): number => actions.filter((a) => a.type === "markConsistent").length;

  it("takes a resyncDone only of the attempt under way: a late one of an earlier attempt with the same snapshot does not mark it consistent", () => {
    const r = follower();
    r.msg(n1, promise(2));
    r.durable();
    r.msg(n1, append(2, VERSION_ZERO, [rec(2, 1), rec(2, 2), rec(2, 3)], 3));
    r.durable();
    // A snapshot past its log: it resets and is inconsistent until the resync ends.
    const snapshot = v(2, 5);
    r.msg(n1, begin(10, snapshot));
    r.durable();
    expect(r.core.status().consistent).toBe(false);
    // The primary restarts the resync (same snapshot, an idle volume): a new attempt.
    r.msg(n1, begin(20, snapshot));
    r.durable();
    expect(marks(r.msg(n1, done(10, snapshot))), "a late resyncDone of the first attempt").toBe(0);
    expect(marks(r.msg(n1, done(20, snapshot)))).toBe(1);
    expect(sent(r.durable())).toContainEqual(expect.objectContaining({ type: "resyncDoneReply", epoch: 2 }));
    expect(r.core.status().consistent).toBe(true);
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { chooseBaseAcross, commitPoint, leaseStart, trustedHead, type PromiseInfo } from "../../src/core/quorum.js";
import { asEpoch, asLsn, asNodeId, compareVersion, writeQuorum, type Epoch, type Lsn, type NodeId, type Version } from "../../src/core/types.js";

/** Naive: scan lsns downward; the first one held by a quorum whose record is of the current epoch. */
function naiveCommit(matches: number[], quorum: number, current: number, epochAt: (l: number) => number | null, epoch: number): number {
  for (let l = Math.max(0, ...matches); l > current; l--) {
    const holders = matches.filter((m) => m >= l).length;
    if (holders >= quorum) return epochAt(l) === epoch ? l : current;
  }
  return current;
}

describe("commitPoint", () => {
  it("matches a naive scan", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(30), { minLength: 1, maxLength: 7 }),
        fc.nat(30),
        fc.array(fc.nat(3), { minLength: 31, maxLength: 31 }),
        fc.nat(3),
        (matches, current, epochs, epoch) => {
          const quorum = writeQuorum(matches.length);
          const epochAt = (l: Lsn): Epoch | null => (l <= 30 ? asEpoch(epochs[l] as number) : null);
          const got = commitPoint(matches, quorum, asLsn(current), epochAt, asEpoch(epoch));
          expect(got).toBe(naiveCommit(matches, quorum, current, (l) => epochs[l] ?? null, epoch));
        },
      ),
    );
  });

  it("never counts a record of an older epoch by itself (Raft's commitment rule)", () => {
    const epochAt = (l: Lsn): Epoch => asEpoch(l <= 5 ? 1 : 2);
    expect(commitPoint([5, 5, 3], 2, asLsn(0), epochAt, asEpoch(2))).toBe(0);
    expect(commitPoint([6, 6, 3], 2, asLsn(0), epochAt, asEpoch(2))).toBe(6);
  });
});

describe("leaseStart", () => {
  it("is the latest time t at which a quorum (counting the primary) answered messages sent at t or later", () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.nat(100), { nil: null }), { maxLength: 6 }), fc.nat(200), (acks, now) => {
        const quorum = writeQuorum(acks.length + 1);
        const got = leaseStart(acks, quorum, now);
        let naive: number | null = null;
        for (let t = 100; t >= 0 && naive === null; t--) {
          if (1 + acks.filter((a) => a !== null && a >= t).length >= quorum) naive = t;
        }
        if (quorum <= 1) naive = now;
        expect(got).toBe(naive);
      }),
    );
  });
});

const version = fc.record({ epoch: fc.nat(3).map(asEpoch), lsn: fc.nat(6).map(asLsn) });

/** Naive: enumerate every possible write quorum of W replicas; each must contain a witness. */
function naiveChoose(promises: PromiseInfo[], n: number, w: number, preferred: string): { node: string; target: Version } | null {
  if (promises.length < w) return null;
  let source: PromiseInfo | null = null;
  for (const p of promises) {
    if (source === null) source = p;
    else {
      const c = compareVersion(trustedHead(p), trustedHead(source));
      if (c > 0 || (c === 0 && p.node === preferred)) source = p;
    }
  }
  if (source === null) return null;
  const target = trustedHead(source);
  const witness = new Set(promises.filter((p) => !p.unsurePastHead && compareVersion(p.witnessHead, target) <= 0).map((p) => p.node as string));
  const all = Array.from({ length: n }, (_, i) => `n${i}`);
  for (let mask = 0; mask < 1 << n; mask++) {
    const members = all.filter((_, i) => (mask & (1 << i)) !== 0);
    if (members.length < w) continue;
    if (!members.some((m) => witness.has(m))) return null;
  }
  return { node: source.node, target };
}

const nodes = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => asNodeId(`n${i}`));

describe("chooseBaseAcross", () => {
  it("agrees with a naive enumeration of write quorums", () => {
    const replica = fc.record({ head: version, consistent: fc.boolean(), unsurePastHead: fc.boolean(), behind: fc.nat(2), promised: fc.boolean() });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(replica, { minLength: 5, maxLength: 5 }), fc.nat(4), (n, replicas, preferredIndex) => {
        const promises: PromiseInfo[] = replicas.slice(0, n).flatMap(({ head, consistent, unsurePastHead, behind, promised }, i) =>
          promised
            ? [
                {
                  node: asNodeId(`n${i}`),
                  head,
                  consistent,
                  unsurePastHead,
                  // A witness head never exceeds the head.
                  witnessHead: consistent ? head : { epoch: head.epoch, lsn: asLsn(Math.max(0, head.lsn - behind)) },
                },
              ]
            : [],
        );
        const w = writeQuorum(n);
        const preferred = `n${preferredIndex % n}`;
        const got = chooseBaseAcross(promises, [nodes(n)], asNodeId(preferred));
        const want = naiveChoose(promises, n, w, preferred);
        expect(got === null ? null : { node: got.source.node, target: got.target }).toEqual(want);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses to take an unsure replica's word that a record does not exist", () => {
    const v = (e: number, l: number): Version => ({ epoch: asEpoch(e), lsn: asLsn(l) });
    const p = (node: string, head: Version, unsure: boolean): PromiseInfo => ({ node: asNodeId(node), head, consistent: true, unsurePastHead: unsure, witnessHead: head });
    // n1 may have lost records past 1:5 that n3 (not asked) also holds.
    expect(chooseBaseAcross([p("n1", v(1, 5), true), p("n2", v(1, 4), false)], [["n1", "n2", "n3"].map(asNodeId)], asNodeId("n2"))).toBeNull();
    const ok = chooseBaseAcross([p("n1", v(1, 5), true), p("n2", v(1, 4), false), p("n3", v(1, 7), false)], [["n1", "n2", "n3"].map(asNodeId)], asNodeId("n2"));
    expect(ok?.source.node).toBe("n3");
  });

  it("while joint, needs a majority and the witnesses of each set", () => {
    const v = (e: number, l: number): Version => ({ epoch: asEpoch(e), lsn: asLsn(l) });
    const p = (node: string, head: Version): PromiseInfo => ({ node: asNodeId(node), head, consistent: true, unsurePastHead: false, witnessHead: head });
    const old = ["n1", "n2", "n3"].map(asNodeId);
    const next = ["n2", "n3", "n4"].map(asNodeId);
    // n1 and n2: a majority of the old set, one of the new: not enough.
    expect(chooseBaseAcross([p("n1", v(1, 5)), p("n2", v(1, 4))], [old, next], asNodeId("n1"))).toBeNull();
    // n1, n4 and the learner n5 (in no set): a majority of neither.
    expect(chooseBaseAcross([p("n1", v(1, 5)), p("n4", v(1, 4)), p("n5", v(1, 9))], [old, next], asNodeId("n1"))).toBeNull();
    // n1, n3, n4: a majority of each; the most up-to-date log of all wins, a learner's too.
    const got = chooseBaseAcross([p("n1", v(1, 5)), p("n3", v(1, 4)), p("n4", v(1, 6)), p("n5", v(1, 7))], [old, next], asNodeId("n1"));
    expect(got?.source.node).toBe("n5");
  });

  it("trusts an inconsistent replica's log only up to its witness head", () => {
    const v = (e: number, l: number): Version => ({ epoch: asEpoch(e), lsn: asLsn(l) });
    const got = chooseBaseAcross(
      [
        { node: asNodeId("n1"), head: v(2, 9), consistent: false, unsurePastHead: false, witnessHead: v(1, 6) },
        { node: asNodeId("n2"), head: v(1, 8), consistent: true, unsurePastHead: false, witnessHead: v(1, 8) },
      ],
      [["n1", "n2", "n3"].map(asNodeId)],
      asNodeId("n1"),
    );
    expect(got?.source.node).toBe("n2");
    expect(got?.target).toEqual(v(1, 8));
  });
});

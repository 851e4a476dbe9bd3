import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkDurability, checkRegister, type HistoryOp } from "../sim/history.js";

/** Brute force: is there a total order, respecting real time, where every read sees the latest write? */
function naiveLinearizable(ops: HistoryOp[]): boolean {
  const end = (o: HistoryOp): number => (o.outcome === "ok" && o.complete !== null ? o.complete : Infinity);
  const optional = ops.filter((o) => o.kind === "write" && o.outcome !== "ok");
  for (let mask = 0; mask < 1 << optional.length; mask++) {
    const dropped = new Set(optional.filter((_, i) => (mask & (1 << i)) !== 0));
    const live = ops.filter((o) => !dropped.has(o));
    const placed = new Set<HistoryOp>();
    const search = (value: number): boolean => {
      if (placed.size === live.length) return true;
      for (const o of live) {
        if (placed.has(o)) continue;
        if (live.some((p) => p !== o && !placed.has(p) && end(p) < o.invoke)) continue;
        if (o.kind === "read" && o.value !== value) continue;
        placed.add(o);
        const ok = search(o.kind === "write" ? o.value : value);
        placed.delete(o);
        if (ok) return true;
      }
      return false;
    };
    if (search(0)) return true;
  }
  return false;
}

const history = fc
  .record({
    writes: fc.integer({ min: 1, max: 3 }),
    reads: fc.integer({ min: 0, max: 3 }),
    times: fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 12, maxLength: 12 }),
    readValues: fc.array(fc.nat(3), { minLength: 3, maxLength: 3 }),
    unknown: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
  })
  .map(({ writes, reads, times, readValues, unknown }) => {
    const ops: HistoryOp[] = [];
    let t = 0;
    const interval = (): [number, number] => {
      const a = times[t++] as number;
      const b = times[t++] as number;
      return a < b ? [a, b] : [b, a];
    };
    for (let i = 0; i < writes; i++) {
      const [invoke, complete] = interval();
      const ok = !(unknown[i] ?? false);
      ops.push({ client: "c", kind: "write", block: 0, value: i + 1, invoke, complete: ok ? complete : null, outcome: ok ? "ok" : "unknown" });
    }
    for (let i = 0; i < reads; i++) {
      const [invoke, complete] = interval();
      ops.push({ client: "c", kind: "read", block: 0, value: (readValues[i] ?? 0) % (writes + 1), invoke, complete, outcome: "ok" });
    }
    return ops;
  });

describe("checkRegister", () => {
  it("agrees with a brute-force linearizability search", () => {
    fc.assert(
      fc.property(history, (ops) => {
        expect(checkRegister(0, ops).length === 0).toBe(naiveLinearizable(ops));
      }),
      { numRuns: 3000 },
    );
  });

  it("names a stale read", () => {
    const ops: HistoryOp[] = [
      { client: "c", kind: "write", block: 3, value: 1, invoke: 1, complete: 2, outcome: "ok" },
      { client: "c", kind: "write", block: 3, value: 2, invoke: 3, complete: 4, outcome: "ok" },
      { client: "d", kind: "read", block: 3, value: 1, invoke: 5, complete: 6, outcome: "ok" },
    ];
    const found = checkRegister(3, ops);
    expect(found.map((v) => v.promise)).toEqual(["P3"]);
    expect(found[0]?.detail).toContain("stale read");
  });
});

describe("checkDurability", () => {
  it("finds an acknowledged write that the final read does not show", () => {
    const ops: HistoryOp[] = [
      { client: "c", kind: "write", block: 1, value: 1, invoke: 1, complete: 2, outcome: "ok" },
      { client: "c", kind: "write", block: 1, value: 2, invoke: 3, complete: 4, outcome: "ok", epoch: 2 },
      { client: "f", kind: "read", block: 1, value: 1, invoke: 9, complete: 10, outcome: "ok", final: true },
    ];
    expect(checkDurability(1, ops)).toEqual([expect.objectContaining({ promise: "P1" })]);
  });

  it("accepts a newer write of unknown outcome", () => {
    const ops: HistoryOp[] = [
      { client: "c", kind: "write", block: 1, value: 1, invoke: 1, complete: 2, outcome: "ok" },
      { client: "c", kind: "write", block: 1, value: 2, invoke: 3, complete: null, outcome: "unknown" },
      { client: "f", kind: "read", block: 1, value: 2, invoke: 9, complete: 10, outcome: "ok", final: true },
    ];
    expect(checkDurability(1, ops)).toEqual([]);
  });
});

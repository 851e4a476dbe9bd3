import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { asEpoch, asLsn, compareVersion, writeQuorum, type Version } from "../../src/core/types.js";

const version = fc.record({ epoch: fc.nat(20).map(asEpoch), lsn: fc.nat(50).map(asLsn) });

describe("compareVersion", () => {
  it("orders by epoch, then lsn", () => {
    const table: [Version, Version, number][] = [
      [{ epoch: asEpoch(1), lsn: asLsn(9) }, { epoch: asEpoch(2), lsn: asLsn(1) }, -1],
      [{ epoch: asEpoch(2), lsn: asLsn(3) }, { epoch: asEpoch(2), lsn: asLsn(1) }, 1],
      [{ epoch: asEpoch(2), lsn: asLsn(3) }, { epoch: asEpoch(2), lsn: asLsn(3) }, 0],
    ];
    for (const [a, b, want] of table) expect(compareVersion(a, b)).toBe(want);
  });

  it("is a total order consistent with the lexicographic tuple order", () => {
    fc.assert(
      fc.property(version, version, (a, b) => {
        const naive = a.epoch * 1000 + a.lsn - (b.epoch * 1000 + b.lsn);
        expect(Math.sign(compareVersion(a, b))).toBe(Math.sign(naive));
        // Antisymmetric (as a sum: -0 and 0 are different numbers to toBe).
        expect(compareVersion(a, b) + compareVersion(b, a)).toBe(0);
      }),
    );
  });
});

describe("writeQuorum", () => {
  it("is a majority", () => {
    expect([1, 2, 3, 4, 5, 7].map(writeQuorum)).toEqual([1, 2, 2, 3, 3, 4]);
  });
});

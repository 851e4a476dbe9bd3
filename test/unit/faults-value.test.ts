import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeValue, encodeValue, valueKey, type BlockValue } from "../../bench/faults/value.js";

const BLOCK = 4096;

const blockValue = fc.record({
  block: fc.integer({ min: 0, max: 0xffff_ffff }),
  writer: fc.stringMatching(/^[!-~]{1,32}$/),
  seq: fc.maxSafeNat(),
  epoch: fc.maxSafeNat(),
});

describe("encodeValue / decodeValue", () => {
  it("round-trips every value, and fills the whole block", () => {
    fc.assert(
      fc.property(blockValue, (v) => {
        const bytes = encodeValue(v, BLOCK);
        expect(bytes.length).toBe(BLOCK);
        expect(decodeValue(bytes, v.block)).toEqual({ kind: "value", value: v });
        // The fill is not a run of zeros: a half-zeroed block must not decode.
        expect(bytes.subarray(64, BLOCK - 4).some((b) => b !== 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("is deterministic, and two values never share a block image", () => {
    const a: BlockValue = { block: 7, writer: "c1", seq: 1, epoch: 3 };
    expect(encodeValue(a, BLOCK)).toEqual(encodeValue(a, BLOCK));
    expect(encodeValue(a, BLOCK)).not.toEqual(encodeValue({ ...a, seq: 2 }, BLOCK));
  });

  it("reads all zeros as zero", () => {
    expect(decodeValue(new Uint8Array(BLOCK), 5)).toEqual({ kind: "zero" });
  });

  it("reads a block from a byte offset that is not aligned", () => {
    const v: BlockValue = { block: 2, writer: "c9", seq: 44, epoch: 1 };
    const buf = new Uint8Array(BLOCK + 3);
    buf.set(encodeValue(v, BLOCK), 3);
    expect(decodeValue(buf.subarray(3), 2)).toEqual({ kind: "value", value: v });
    expect(decodeValue(new Uint8Array(BLOCK + 3).subarray(3), 2)).toEqual({ kind: "zero" });
    const almostZero = new Uint8Array(BLOCK + 3);
    almostZero[BLOCK + 2] = 1;
    expect(decodeValue(almostZero.subarray(3), 2).kind).toBe("undecodable");
  });

  const v: BlockValue = { block: 9, writer: "c2", seq: 1234, epoch: 5 };
  const w: BlockValue = { block: 9, writer: "c3", seq: 77, epoch: 6 };
  const cases: { name: string; bytes: () => Uint8Array; block: number; reason: RegExp }[] = [
    {
      name: "a torn block (first half one write, second half another)",
      bytes: () => {
        const out = encodeValue(v, BLOCK);
        out.set(encodeValue(w, BLOCK).subarray(2048), 2048);
        return out;
      },
      block: 9,
      reason: /checksum.*byte 2048/,
    },
    {
      name: "a half-zeroed block (a torn write over zeros)",
      bytes: () => {
        const out = encodeValue(v, BLOCK);
        out.fill(0, 512);
        return out;
      },
      block: 9,
      reason: /checksum.*byte 512/,
    },
    {
      name: "one flipped bit",
      bytes: () => {
        const out = encodeValue(v, BLOCK);
        out[3000] = (out[3000] as number) ^ 0x10;
        return out;
      },
      block: 9,
      reason: /checksum.*byte 3000/,
    },
    {
      name: "a flipped bit in the header",
      bytes: () => {
        const out = encodeValue(v, BLOCK);
        out[9] = (out[9] as number) ^ 0x01;
        return out;
      },
      block: 9,
      reason: /checksum/,
    },
    { name: "a value written for another block (misdirected)", bytes: () => encodeValue(v, BLOCK), block: 10, reason: /written for block 9/ },
    {
      name: "bytes that are not a value at all",
      bytes: () => new Uint8Array(BLOCK).fill(0xab),
      block: 9,
      reason: /no value header/,
    },
    { name: "a short read", bytes: () => encodeValue(v, BLOCK).subarray(0, 4001), block: 9, reason: /4001 bytes/ },
    { name: "a truncated block", bytes: () => encodeValue(v, BLOCK).subarray(0, 4000), block: 9, reason: /checksum/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      const d = decodeValue(c.bytes(), c.block);
      expect(d.kind).toBe("undecodable");
      if (d.kind === "undecodable") expect(d.reason).toMatch(c.reason);
    });
  }

  it("refuses writers, seqs and block sizes it cannot encode", () => {
    expect(() => encodeValue({ ...v, writer: "" }, BLOCK)).toThrow(RangeError);
    expect(() => encodeValue({ ...v, writer: "x".repeat(33) }, BLOCK)).toThrow(RangeError);
    expect(() => encodeValue({ ...v, writer: "c 1" }, BLOCK)).toThrow(RangeError);
    expect(() => encodeValue({ ...v, seq: -1 }, BLOCK)).toThrow(RangeError);
    expect(() => encodeValue({ ...v, epoch: 1.5 }, BLOCK)).toThrow(RangeError);
    expect(() => encodeValue(v, 100)).toThrow(RangeError);
    expect(() => encodeValue(v, 4097)).toThrow(RangeError);
  });

  it("works at other block sizes", () => {
    for (const size of [128, 512, 65536]) expect(decodeValue(encodeValue(v, size), 9)).toEqual({ kind: "value", value: v });
  });
});

describe("valueKey", () => {
  it("names a value by writer and seq, uniquely", () => {
    expect(valueKey({ writer: "c1", seq: 12 })).toBe("c1#12");
    expect(valueKey({ writer: "c1", seq: 12 })).not.toBe(valueKey({ writer: "c11", seq: 2 }));
  });
});

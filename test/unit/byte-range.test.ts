import { describe, expect, it } from "vitest";
import { VolumeError } from "../../src/core/errors.js";
import { blockSpan, checkByteRange, isAligned, mergePartialWrite } from "../../src/node/byte-range.js";

const BS = 4096;

describe("byte ranges as whole blocks", () => {
  it.each([
    // offset, length, block, blockCount, headBytes, tailBytes
    [0, 4096, 0, 1, 0, 0],
    [0, 1, 0, 1, 0, 4095],
    [4095, 2, 0, 2, 4095, 4095],
    [4096, 8192, 1, 2, 0, 0],
    [100, 4096, 0, 2, 100, 3996],
    [8191, 1, 1, 1, 4095, 0],
  ])("%i+%i spans block %i x%i (head %i, tail %i)", (offset, length, block, blockCount, headBytes, tailBytes) => {
    const s = blockSpan(offset, length, BS);
    expect(s).toEqual({ block, blockCount, headBytes, tailBytes });
    expect(isAligned(s)).toBe(headBytes === 0 && tailBytes === 0);
  });

  it.each([
    [0, 0, "INVALID_ARGUMENT"],
    [-1, 10, "INVALID_ARGUMENT"],
    [0.5, 10, "INVALID_ARGUMENT"],
    [0, 1025 * BS, "INVALID_ARGUMENT"],
    [1, 1024 * BS, "INVALID_ARGUMENT"],
    [16 * BS - 1, 2, "OUT_OF_RANGE"],
    [16 * BS, 1, "OUT_OF_RANGE"],
  ])("refuses %i+%i with %s", (offset, length, code) => {
    let err: unknown = null;
    try {
      checkByteRange(offset, length, BS, 16, "read");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VolumeError);
    expect((err as VolumeError).code).toBe(code);
  });

  it("accepts the largest request and the last byte", () => {
    expect(checkByteRange(0, 1024 * BS, BS, 2048, "read").blockCount).toBe(1024);
    expect(checkByteRange(16 * BS - 1, 1, BS, 16, "read")).toMatchObject({ block: 15, blockCount: 1 });
  });

  it("merges a partial write over the edge blocks it cuts", () => {
    const span = blockSpan(4090, 10, BS);
    const head = Buffer.alloc(BS, 1);
    const tail = Buffer.alloc(BS, 2);
    const out = mergePartialWrite(span, BS, Buffer.alloc(10, 9), 10, head, tail);
    expect(out.length).toBe(2 * BS);
    expect([...out.subarray(4088, 4100)]).toEqual([1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
    expect(out[4100]).toBe(2);
    const zeros = mergePartialWrite(span, BS, null, 10, head, tail);
    expect([...zeros.subarray(4089, 4101)]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  });
});

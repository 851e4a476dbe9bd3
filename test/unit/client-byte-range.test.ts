import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blocksTouched, splitByteRange } from "../../src/client/byte-range.js";
import { formatSize, parseSize } from "../../src/cli/size.js";

describe("splitByteRange", () => {
  it("covers the range exactly, in order, cutting only at block boundaries, each piece within the block bound", () => {
    fc.assert(
      fc.property(fc.nat(1 << 24), fc.nat(1 << 22), fc.constantFrom(512, 4096), fc.integer({ min: 1, max: 300 }), (offset, length, blockSize, blocksMax) => {
        const pieces = splitByteRange(offset, length, blockSize, blocksMax);
        let at = offset;
        for (const [i, p] of pieces.entries()) {
          expect(p.offset).toBe(at);
          expect(p.length).toBeGreaterThan(0);
          expect(blocksTouched(p, blockSize)).toBeLessThanOrEqual(blocksMax);
          if (i > 0) expect(p.offset % blockSize).toBe(0);
          at += p.length;
        }
        expect(at).toBe(offset + length);
        if (length === 0) expect(pieces).toEqual([]);
      }),
    );
  });

  it("keeps a range inside one request whole", () => {
    expect(splitByteRange(100, 4000, 4096, 1)).toEqual([{ offset: 100, length: 3996 }, { offset: 4096, length: 4 }]);
    expect(splitByteRange(4096, 8192, 4096, 2)).toEqual([{ offset: 4096, length: 8192 }]);
  });
});

describe("volctl sizes", () => {
  it.each([
    ["4096", 4096],
    ["0", 0],
    ["64KiB", 64 * 1024],
    ["10GiB", 10 * 1024 ** 3],
    ["1 TiB", 1024 ** 4],
    ["5mib", 5 * 1024 ** 2],
    ["12B", 12],
  ])("reads %s as %d bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(["", "10GB", "1.5GiB", "-1", "GiB", "1 PB", "99999999999TiB"])("refuses %j", (text) => {
    expect(parseSize(text)).toBeNull();
  });

  it("formats sizes for people", () => {
    expect(formatSize(1024 ** 3)).toBe("1 GiB");
    expect(formatSize(1536 * 1024)).toBe("1.5 MiB");
    expect(formatSize(100)).toBe("100 B");
  });
});

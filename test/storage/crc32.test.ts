import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blockCrc32, crc32, crc32Package, crc32Zlib } from "../../src/storage/crc32.js";

describe("CRC-32", () => {
  it("has Node's zlib.crc32 on this Node, and uses it", () => {
    expect(crc32Zlib).not.toBeNull();
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
  });

  it("gives the same unsigned values from zlib and the crc-32 package, also when continued", () => {
    const zlibCrc = crc32Zlib;
    if (zlibCrc === null) throw new Error("zlib.crc32 is missing");
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 600 }), (a, b) => {
        const z = zlibCrc(b, zlibCrc(a));
        const p = crc32Package(b, crc32Package(a));
        expect(p).toBe(z);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(crc32Package(Buffer.concat([a, b]))).toBe(z);
      }),
    );
  });

  it("covers the block index: the same bytes at another block give another checksum", () => {
    const bytes = Buffer.alloc(4096, 7);
    expect(blockCrc32(1, bytes)).not.toBe(blockCrc32(2, bytes));
    expect(blockCrc32(1, bytes)).toBe(blockCrc32(1, Buffer.from(bytes)));
  });
});

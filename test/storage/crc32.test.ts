import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { blockCrc32, crc32, crc32Native, crc32Package, crc32Zlib, regionDigest } from "../../src/storage/crc32.js";

describe("CRC-32", () => {
  it("uses the native module where it loads (it does on Linux x64), else Node's zlib.crc32", () => {
    expect(crc32Zlib).not.toBeNull();
    if (process.platform === "linux" && process.arch === "x64") expect(crc32Native).not.toBeNull();
    expect(crc32).toBe(crc32Native ?? crc32Zlib);
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
  });

  it("gives the same values from the native module as from zlib, at the lengths and offsets its SIMD folding takes apart, also when continued", () => {
    const native = crc32Native;
    const zlibCrc = crc32Zlib;
    if (zlibCrc === null) throw new Error("zlib.crc32 is missing");
    if (native === null) return; // (Checked on Linux x64 by the test above.)
    const big = Buffer.alloc(70_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 7)) & 0xff;
    for (const length of [0, 1, 3, 15, 16, 17, 63, 64, 65, 127, 128, 129, 255, 256, 4096, 4141, 65_536, 69_999]) {
      for (const offset of [0, 1, 7, 8]) {
        const part = big.subarray(offset, Math.min(big.length, offset + length));
        expect(native(part)).toBe(zlibCrc(part));
        expect(native(part, 0x12345678)).toBe(zlibCrc(part, 0x12345678));
      }
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.uint8Array({ maxLength: 600 }), (a, b) => {
        expect(native(b, native(a))).toBe(zlibCrc(b, zlibCrc(a)));
        expect(native(Buffer.concat([a, b]))).toBe(zlibCrc(b, zlibCrc(a)));
      }),
    );
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

  it("continues over empty data to the previous value, from every source", () => {
    for (const f of [crc32Native, crc32Zlib, crc32Package]) {
      if (f === null) continue;
      expect(f(new Uint8Array(0), 0xd202ef8d)).toBe(0xd202ef8d);
      expect(f(new Uint8Array(0))).toBe(0);
    }
  });

  it("covers the block index: the same bytes at another block give another checksum", () => {
    const bytes = Buffer.alloc(4096, 7);
    expect(blockCrc32(1, bytes)).not.toBe(blockCrc32(2, bytes));
    expect(blockCrc32(1, bytes)).toBe(blockCrc32(1, Buffer.from(bytes)));
  });

  it("digests a region as the CRC-32 of its block checksums, each 4 little-endian bytes, also from a view into a larger array", () => {
    const all = Uint32Array.from([0xdeadbeef, 0, 1, 0x80000000, 42]);
    const view = all.subarray(1, 4);
    const le = Buffer.alloc(12);
    view.forEach((x, i) => le.writeUInt32LE(x, i * 4));
    expect(regionDigest(view)).toBe(crc32Package(le));
    expect(regionDigest(Uint32Array.from([0, 1, 0x80000000]))).toBe(regionDigest(view));
    expect(regionDigest(Uint32Array.from([1, 0, 0x80000000]))).not.toBe(regionDigest(view));
  });
});

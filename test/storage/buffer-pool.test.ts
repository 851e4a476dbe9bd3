import { describe, expect, it } from "vitest";
import { BufferPool } from "../../src/storage/buffer-pool.js";

describe("BufferPool", () => {
  it("lends a buffer again once it is given back, and only then", () => {
    const pool = new BufferPool(4 * 1024 * 1024);
    const a = pool.take(1024 * 1024);
    expect(a.length).toBe(1024 * 1024);
    const b = pool.take(1024 * 1024);
    expect(b.buffer).not.toBe(a.buffer);
    pool.give(a);
    const c = pool.take(1024 * 1024 - 4096);
    expect(c.buffer).toBe(a.buffer);
    expect(c.length).toBe(1024 * 1024 - 4096);
    // Another size class is not served from it.
    pool.give(c);
    expect(pool.take(3 * 1024 * 1024).buffer).not.toBe(a.buffer);
  });

  it("ignores a second give, views of it and buffers it never lent", () => {
    const pool = new BufferPool(4 * 1024 * 1024);
    const a = pool.take(100_000);
    pool.give(a.subarray(10, 20));
    pool.give(a);
    expect(pool.heldFreeBytes()).toBe(a.buffer.byteLength);
    pool.give(Buffer.allocUnsafeSlow(a.buffer.byteLength));
    expect(pool.heldFreeBytes()).toBe(a.buffer.byteLength);
    // Lent once: taking it twice would hand one buffer to two holders.
    const b = pool.take(100_000);
    const c = pool.take(100_000);
    expect(b.buffer).toBe(a.buffer);
    expect(c.buffer).not.toBe(a.buffer);
  });

  it("keeps at most its bound of free bytes", () => {
    const pool = new BufferPool(2 * 1024 * 1024);
    const taken = [0, 1, 2, 3].map(() => pool.take(1024 * 1024));
    for (const t of taken) pool.give(t);
    expect(pool.heldFreeBytes()).toBe(2 * 1024 * 1024);
  });
});

import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FrameArena } from "../../src/storage/log-frame.js";

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "frame-arena-gc-child.ts");

describe("FrameArena", () => {
  const SLAB = 64 * 1024;
  const QUARTER = SLAB / 4;

  it("uses a slab again once every frame carved from it is released, and not before", () => {
    const arena = new FrameArena(SLAB);
    const first = arena.reserve(QUARTER, 2);
    for (let i = 0; i < 3; i++) expect(arena.reserve(QUARTER, 1)).toBe(first);
    // First is full (five frames): the arena moves on to a second slab.
    const second = arena.reserve(QUARTER, 1);
    expect(second).not.toBe(first);
    arena.release(first, 4);
    expect(arena.freeSlabs).toBe(0);
    arena.release(first, 1);
    expect(arena.freeSlabs).toBe(1);
    // Once the second is full, the next slab is the first one again.
    for (let i = 0; i < 3; i++) expect(arena.reserve(QUARTER, 1)).toBe(second);
    expect(arena.reserve(QUARTER, 1)).toBe(first);
    expect(arena.freeSlabs).toBe(0);
  });

  it("never uses again the slab it is carving from, nor one with a frame never released", () => {
    const arena = new FrameArena(SLAB);
    const a = arena.reserve(QUARTER, 1);
    arena.release(a, 1);
    // All of a's frames so far are released, but the arena still carves from it.
    expect(arena.freeSlabs).toBe(0);
    for (let i = 0; i < 3; i++) expect(arena.reserve(QUARTER, 1)).toBe(a);
    const b = arena.reserve(100, 1);
    expect(b).not.toBe(a);
    arena.release(a, 2);
    // One frame of a is not released: a goes to the garbage collector, never back to the arena.
    expect(arena.freeSlabs).toBe(0);
    for (let i = 0; i < 3; i++) expect(arena.reserve(QUARTER, 1)).toBe(b);
    const c = arena.reserve(QUARTER, 1);
    expect(c).not.toBe(a);
    expect(c).not.toBe(b);
  });

  it("gives frames over a quarter of a slab buffers of their own, never used again", () => {
    const arena = new FrameArena(SLAB);
    const big = arena.reserve(QUARTER + 1, 1);
    expect(arena.reservedAt).toBe(0);
    expect(big.length).toBe(QUARTER + 1);
    arena.release(big, 1);
    expect(arena.freeSlabs).toBe(0);
  });

  it("keeps no slab alive whose frames were never released: the garbage collector takes them", () => {
    const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", CHILD], { encoding: "utf8", timeout: 30_000 });
    expect(out.trim()).toBe("collected 63");
  });
});

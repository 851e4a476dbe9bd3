/**
 * Reads take their buffers unzeroed (small ones from a shared slab, large
 * ones from a pool, see src/storage/read-buffers.ts): every byte of a read
 * must be set by the store, or another read's bytes (or any memory the
 * process freed) would reach a client. Here every unzeroed buffer Node
 * hands out is filled with a pattern first, so a block the store forgets
 * to zero shows it; and a large read's buffer given back is filled with it
 * before the next read is served into it.
 */
import * as fs from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asLsn } from "../../src/core/types.js";
import { openFileReplicaStore } from "../../src/storage/data-dir.js";
import type { DiskReplicaStore } from "../../src/storage/disk-replica-store.js";
import { readBuffers } from "../../src/storage/read-buffers.js";
import { BLOCK_SIZE, blockBytes, rangeRecord, tempDir, volumeConfig, writeRecord } from "./fixtures.js";

const STALE = 0xa5;
const allocUnsafe = Buffer.allocUnsafe.bind(Buffer);
const allocUnsafeSlow = Buffer.allocUnsafeSlow.bind(Buffer);

let dir = "";
let store: DiskReplicaStore | null = null;

beforeEach(async () => {
  dir = await tempDir();
  Buffer.allocUnsafe = (size: number) => allocUnsafe(size).fill(STALE);
  Buffer.allocUnsafeSlow = (size: number) => allocUnsafeSlow(size).fill(STALE);
});
afterEach(async () => {
  Buffer.allocUnsafe = allocUnsafe;
  Buffer.allocUnsafeSlow = allocUnsafeSlow;
  await store?.close().catch(() => undefined);
  store = null;
  await fs.rm(dir, { recursive: true, force: true });
});

/** Blocks 0..7 as the store should serve them: 0, 1 and 3 written, 2 trimmed, 4..7 never written. */
function expected(): Buffer {
  const out = Buffer.alloc(8 * BLOCK_SIZE);
  for (const b of [0, 1, 3]) blockBytes(1, b).copy(out, b * BLOCK_SIZE);
  return out;
}

async function readsMatch(s: DiskReplicaStore): Promise<void> {
  const want = expected();
  // A read past the slab's size (a pooled buffer) and reads of one block (slab views), several times over.
  expect(Buffer.from(await s.readBlocks(0, 8))).toEqual(want);
  // A buffer given back serves the next large read: what it held must not show through.
  for (let round = 0; round < 3; round++) {
    const used = await s.readBlocks(0, 8);
    expect(Buffer.from(used)).toEqual(want);
    used.fill(STALE);
    readBuffers.give(used);
    const again = await s.readBlocks(0, 8);
    expect(again.buffer, "the given-back buffer serves the next large read").toBe(used.buffer);
    expect(Buffer.from(again)).toEqual(want);
    readBuffers.give(again);
  }
  for (let round = 0; round < 3; round++) {
    for (let b = 0; b < 8; b++) expect(Buffer.from(await s.readBlocks(b, 1)), `block ${b}`).toEqual(want.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE));
  }
}

describe("reads set every byte they return", () => {
  it("zeroes trimmed and never-written blocks, from the overlay and from disk", async () => {
    store = await openFileReplicaStore(dir, "vol1", { create: volumeConfig(), regionBlocks: 4 });
    await store.appendLog([writeRecord(1, 1, 0, 4), rangeRecord("trim", 1, 2, 2, 1)]);
    await store.applyThrough(asLsn(2));
    await readsMatch(store);
    await store.checkpoint();
    await readsMatch(store);
  });
});

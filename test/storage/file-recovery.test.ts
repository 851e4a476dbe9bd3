/**
 * The file store against damaged files: bytes written straight into the
 * files, then the volume opened again, as after a torn write or a rotting
 * disk. Also the data-directory lock, across processes.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { strict as assert } from "node:assert";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VolumeError } from "../../src/core/errors.js";
import { asEpoch, asLsn } from "../../src/core/types.js";
import { openDataDir, openFileReplicaStore } from "../../src/storage/data-dir.js";
import type { DiskReplicaStore } from "../../src/storage/disk-replica-store.js";
import { CorruptBlocksError } from "../../src/storage/replica-store.js";
import { SUPERBLOCK_FORMAT, encodeSuperblockBody } from "../../src/storage/superblock-file.js";
import { startTsxChild, type TestChild } from "./child-process.js";
import { BLOCK_SIZE, blockBytes, rangeRecord, tempDir, volumeConfig, writeRecord } from "./fixtures.js";

let dir = "";
let children: TestChild[] = [];
const stores: DiskReplicaStore[] = [];

beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  for (const c of children) await c.kill();
  children = [];
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
});

const volumeDir = (): string => path.join(dir, "volumes", "vol1");
const open = async (create = false): Promise<DiskReplicaStore> => {
  const s = await openFileReplicaStore(dir, "vol1", create ? { create: volumeConfig(), regionBlocks: 4 } : {});
  stores.push(s);
  return s;
};
const closeAll = async (): Promise<void> => {
  for (const s of stores.splice(0)) await s.close();
};
async function segments(): Promise<string[]> {
  return (await fs.readdir(volumeDir())).filter((n) => n.startsWith("log-")).sort();
}
async function patchFile(name: string, offset: number, edit: (b: Buffer) => void, length = 1): Promise<void> {
  const handle = await fs.open(path.join(volumeDir(), name), "r+");
  try {
    const b = Buffer.alloc(length);
    await handle.read(b, 0, length, offset);
    edit(b);
    await handle.write(b, 0, length, offset);
  } finally {
    await handle.close();
  }
}
async function rejection(p: Promise<unknown>): Promise<VolumeError> {
  const err: unknown = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VolumeError);
  return err as VolumeError;
}

const WRITE_FRAME_BYTES = 48 + 2 + BLOCK_SIZE; // header, client id "c1", one block

describe("log recovery on real files", () => {
  it("cuts a torn last record, says it may lack records past its head, and keeps that durably", async () => {
    const store = await open(true);
    for (let l = 1; l <= 5; l++) await store.appendLog([writeRecord(1, l, l)]);
    await closeAll();
    const [segment] = await segments();
    expect(segment).toBeDefined();
    await fs.truncate(path.join(volumeDir(), segment ?? ""), 5 * WRITE_FRAME_BYTES - 100);

    const again = await open();
    expect(again.head()).toEqual({ epoch: 1, lsn: 4 });
    expect(again.superblock().unsurePastHead).toBe(true);
    expect(again.recoveryCut()).toMatch(/torn record/);
    expect(await again.readLog(asLsn(1), asLsn(5))).toBeNull();
    await again.appendLog([writeRecord(1, 5, 9)]);
    await closeAll();
    const third = await open();
    expect(third.head()).toEqual({ epoch: 1, lsn: 5 });
    expect(third.superblock().unsurePastHead).toBe(true);
    expect(third.recoveryCut()).toBeNull();
  });

  it("never trusts a record whose checksum fails: it is cut with everything after it", async () => {
    const store = await open(true);
    for (let l = 1; l <= 6; l++) await store.appendLog([writeRecord(1, l, l)]);
    await closeAll();
    const [segment] = await segments();
    await patchFile(segment ?? "", 2 * WRITE_FRAME_BYTES + 1000, (b) => (b[0] = (b[0] ?? 0) ^ 0x10));

    const again = await open();
    expect(again.head()).toEqual({ epoch: 1, lsn: 2 });
    expect(again.superblock().unsurePastHead).toBe(true);
    expect(again.recoveryCut()).toMatch(/corrupt record at byte 8292 .*checksum/);
    expect(await again.readLog(asLsn(3), asLsn(3))).toBeNull();
    expect((await again.readLog(asLsn(1), asLsn(2)))?.map((r) => r.lsn)).toEqual([1, 2]);
    expect((await fs.stat(path.join(volumeDir(), segment ?? ""))).size).toBe(2 * WRITE_FRAME_BYTES);
  });

  it("leaves no segment without records behind a clean close (the one created ahead of need is removed)", async () => {
    const empty = await open(true);
    expect(empty.head()).toEqual({ epoch: 0, lsn: 0 });
    await closeAll();
    expect(await segments()).toEqual([]);
    const store = await openFileReplicaStore(dir, "vol1", { logSegmentBytes: 2 * WRITE_FRAME_BYTES });
    stores.push(store);
    for (let l = 1; l <= 4; l++) await store.appendLog([writeRecord(1, l, l)]);
    await closeAll();
    const names = await segments();
    expect(names).toHaveLength(2);
    for (const n of names) expect((await fs.stat(path.join(volumeDir(), n))).size).toBe(2 * WRITE_FRAME_BYTES);
  });

  it("cuts the log at a record whose lsn does not follow, even with a valid checksum", async () => {
    const store = await open(true);
    for (let l = 1; l <= 3; l++) await store.appendLog([writeRecord(1, l, l)]);
    await closeAll();
    const [segment] = await segments();
    // Overwrite record 3 with record 2's frame: valid CRC, wrong place.
    const bytes = await fs.readFile(path.join(volumeDir(), segment ?? ""));
    await patchFile(segment ?? "", 2 * WRITE_FRAME_BYTES, (b) => bytes.copy(b, 0, WRITE_FRAME_BYTES, 2 * WRITE_FRAME_BYTES), WRITE_FRAME_BYTES);
    const again = await open();
    expect(again.head().lsn).toBe(2);
    expect(again.recoveryCut()).toMatch(/lsn 2 where 3 was expected/);
  });
});

describe("records read back from the log on real files", () => {
  it("refuses to apply a record not held in memory whose bytes in the log were damaged since: CORRUPT, never its bytes", async () => {
    const store = await openFileReplicaStore(dir, "vol1", { create: volumeConfig(), regionBlocks: 4, logUnappliedHeldBytesMax: 0 });
    stores.push(store);
    await store.appendLog([1, 2, 3].map((l) => writeRecord(1, l, l)));
    expect(await segments()).toHaveLength(1);
    // A bit of record 2's data flips on disk: the frames are 4 KiB and some, so byte 6000 is in record 2.
    await patchFile((await segments())[0] ?? "", 6000, (b) => {
      b[0] = (b[0] ?? 0) ^ 0x10;
    });
    await store.applyThrough(asLsn(1));
    const err = await rejection(store.applyThrough(asLsn(3)));
    expect(err.code).toBe("CORRUPT");
    expect(err.message).toMatch(/Log record 2 of volume vol1 failed its checksum/);
    // Nothing of record 2 (or after it) reached the blocks.
    expect(store.appliedVersion().lsn).toBe(1);
    expect(Buffer.from(await store.readBlocks(2, 1))).toEqual(Buffer.alloc(BLOCK_SIZE));
  });
});

describe("block checksums on real files", () => {
  async function storeWithBlocks(): Promise<void> {
    const store = await open(true);
    await store.appendLog([writeRecord(1, 1, 0, 8), rangeRecord("trim", 1, 2, 6, 1)]);
    await store.applyThrough(asLsn(2));
    await store.checkpoint();
    await closeAll();
  }

  it("refuses a block with a flipped bit, naming it, and still serves the good blocks", async () => {
    await storeWithBlocks();
    await patchFile("blocks", 5 * BLOCK_SIZE + 17, (b) => (b[0] = (b[0] ?? 0) ^ 0x01));
    const store = await open();
    const err = await rejection(store.readBlocks(5, 1));
    expect(err.code).toBe("CORRUPT");
    expect(err.message).toMatch(/^Block 5 of volume vol1 failed its checksum: 0x[0-9a-f]{8} does not match 0x[0-9a-f]{8}$/);
    const wide = await rejection(store.readBlocks(0, 8));
    expect(wide.message).toMatch(/^Block 5 of volume vol1/);
    // The good blocks come with the error, the bad one zeroed; not as an enumerable field that a logger would write out.
    assert(wide instanceof CorruptBlocksError);
    expect(wide.blocks).toEqual([5]);
    expect(Buffer.from(wide.data.subarray(4 * BLOCK_SIZE, 5 * BLOCK_SIZE))).toEqual(blockBytes(1, 4));
    expect(Buffer.from(wide.data.subarray(5 * BLOCK_SIZE, 6 * BLOCK_SIZE))).toEqual(Buffer.alloc(BLOCK_SIZE));
    expect(Object.keys(wide)).not.toContain("data");
    expect(JSON.stringify(wide)).not.toContain("data");
    expect(Buffer.from(await store.readBlocks(4, 1))).toEqual(blockBytes(1, 4));
    expect(store.stats().checksumMismatches).toBe(2);
  });

  it("catches a misdirected write: a good block's bytes at the wrong index", async () => {
    await storeWithBlocks();
    await patchFile("blocks", 4 * BLOCK_SIZE, (b) => blockBytes(1, 3).copy(b), BLOCK_SIZE);
    const store = await open();
    expect((await rejection(store.readBlocks(4, 1))).message).toMatch(/^Block 4 of volume vol1 failed its checksum/);
  });

  it("reads trimmed and never-written blocks as zeros without trusting the data file", async () => {
    await storeWithBlocks();
    await patchFile("blocks", 6 * BLOCK_SIZE, (b) => b.fill(0xab), BLOCK_SIZE);
    await patchFile("blocks", 20 * BLOCK_SIZE, (b) => b.fill(0xcd), BLOCK_SIZE);
    const store = await open();
    expect(Buffer.from(await store.readBlocks(6, 1))).toEqual(Buffer.alloc(BLOCK_SIZE));
    expect(Buffer.from(await store.readBlocks(20, 1))).toEqual(Buffer.alloc(BLOCK_SIZE));
  });

  it("refuses to open a volume whose superblock fails its checksum", async () => {
    const store = await open(true);
    await store.writeSuperblock({ commitLsn: asLsn(0) });
    await closeAll();
    await patchFile("superblock", 40, (b) => (b[0] = (b[0] ?? 0) ^ 0x04));
    const err = await rejection(openFileReplicaStore(dir, "vol1"));
    expect(err.code).toBe("CORRUPT");
    expect(err.message).toMatch(/^Superblock of volume vol1 cannot be trusted, refusing to open it: checksum/);
    // The lock was released on the way out.
    await (await openDataDir(dir)).close();
  });
});

describe("superblock format on real files", () => {
  async function rewriteSuperblock(format: number, edit: (body: Record<string, unknown>) => void): Promise<void> {
    const file = path.join(volumeDir(), "superblock");
    const body = JSON.parse((await fs.readFile(file)).subarray(16).toString("utf8")) as Record<string, unknown>;
    body.format = format;
    edit(body);
    await fs.writeFile(file, encodeSuperblockBody(format, body));
  }

  it("keeps consistentThrough in the checksummed superblock, in the current format", async () => {
    const store = await open(true);
    await store.appendLog([writeRecord(1, 1, 0)]);
    await store.resetLogForResync({ epoch: asEpoch(1), lsn: asLsn(1) }, [], { epoch: asEpoch(1), lsn: asLsn(1) });
    await closeAll();
    const bytes = await fs.readFile(path.join(volumeDir(), "superblock"));
    expect(bytes.readUInt32LE(4)).toBe(SUPERBLOCK_FORMAT);
    expect(SUPERBLOCK_FORMAT).toBe(2);
    expect((await open()).superblock()).toMatchObject({ consistent: false, consistentThrough: { epoch: 1, lsn: 1 } });
  });

  it("reads format 1 (before consistentThrough) as consistentThrough null", async () => {
    const store = await open(true);
    await store.appendLog([writeRecord(1, 1, 0)]);
    await store.resetLogForResync({ epoch: asEpoch(1), lsn: asLsn(1) }, [], { epoch: asEpoch(1), lsn: asLsn(1) });
    await closeAll();
    await rewriteSuperblock(1, (body) => delete (body.superblock as Record<string, unknown>).consistentThrough);
    const again = await open();
    expect(again.superblock()).toMatchObject({ consistent: false, consistentThrough: null });
    expect(again.head()).toEqual({ epoch: 1, lsn: 1 });
  });

  it("refuses a format it does not know, and a consistent replica with a consistentThrough", async () => {
    await open(true);
    await closeAll();
    await rewriteSuperblock(3, () => undefined);
    const err = await rejection(openFileReplicaStore(dir, "vol1"));
    expect(err.code).toBe("CORRUPT");
    expect(err.message).toBe(
      "Superblock of volume vol1 cannot be trusted, refusing to open it: it is in format 3, and this replivol reads formats 1 and 2 only (was it written by a newer version?)",
    );
    await rewriteSuperblock(2, (body) => ((body.superblock as Record<string, unknown>).consistentThrough = { epoch: 1, lsn: 1 }));
    expect((await rejection(openFileReplicaStore(dir, "vol1"))).message).toMatch(/a consistent replica holds a consistentThrough$/);
  });
});

describe("data directory", () => {
  it("is locked: a second opener in this process fails at once, naming the holder's pid", async () => {
    const first = await openDataDir(dir);
    try {
      const err = await rejection(openDataDir(dir));
      expect(err.message).toBe(`Data directory ${dir} is in use by another volnode (pid ${process.pid})`);
    } finally {
      await first.close();
    }
    await (await openDataDir(dir)).close();
  });

  it("is locked across processes, and a killed holder's lock is released by the kernel", async () => {
    const held = await openDataDir(dir);
    const refused = startTsxChild("lock-child.ts", [dir]);
    children.push(refused);
    const line = await refused.waitForLine((l) => l.startsWith("error "), 20_000);
    expect(line).toBe(`error VOLUME_BUSY Data directory ${dir} is in use by another volnode (pid ${process.pid})`);
    expect((await refused.exited).code).toBe(1);
    await held.close();

    const holder = startTsxChild("lock-child.ts", [dir]);
    children.push(holder);
    await holder.waitForLine((l) => l === `locked ${holder.pid}`, 20_000);
    expect((await rejection(openDataDir(dir))).message).toBe(`Data directory ${dir} is in use by another volnode (pid ${holder.pid})`);
    await holder.kill();
    await (await openDataDir(dir)).close();
  });

  it("validates volume names and never touches anything outside the data directory", async () => {
    for (const name of ["../evil", "", "Vol", ".hidden", "a/b", "x".repeat(65)]) {
      const err = await rejection(openFileReplicaStore(dir, name, { create: { ...volumeConfig(), name } }));
      expect(err.code).toBe("INVALID_ARGUMENT");
      expect(err.message).toMatch(/^Invalid volume name/);
    }
    // Names are checked before anything is created, not even the data directory's lock.
    expect(await fs.readdir(dir)).toEqual([]);
    await expect(fs.access(path.join(dir, "..", "evil"))).rejects.toThrow();
  });

  it("holds many volumes under one lock; a missing volume is NOT_FOUND, an existing one cannot be created again", async () => {
    const dataDir = await openDataDir(dir);
    try {
      const a = await dataDir.openVolume("a", { create: volumeConfig("a") });
      await dataDir.openVolume("b.2", { create: volumeConfig("b.2") });
      expect(await dataDir.volumeNames()).toEqual(["a", "b.2"]);
      expect((await rejection(dataDir.openVolume("a"))).code).toBe("VOLUME_BUSY");
      await a.close();
      expect((await rejection(dataDir.openVolume("a", { create: volumeConfig("a") }))).message).toMatch(/already exists/);
      expect((await rejection(dataDir.openVolume("nope"))).code).toBe("NOT_FOUND");
      const reopened = await dataDir.openVolume("a");
      expect(reopened.superblock().config.name).toBe("a");
    } finally {
      await dataDir.close();
    }
  });
});

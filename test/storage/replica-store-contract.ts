/**
 * The ReplicaStore contract: one suite, run against every implementation
 * (the file store and the in-memory store pass the same tests).
 */
import { afterEach, describe, expect, it } from "vitest";
import { VolumeError } from "../../src/core/errors.js";
import { REGION_DIRTY, VERSION_ZERO, asClientId, asEpoch, asLsn, type LogRecord, type Version } from "../../src/core/types.js";
import { blockCrc32, regionDigest } from "../../src/storage/crc32.js";
import { diskError } from "../../src/storage/volume-disk.js";
import { BLOCK_SIZE, blockBytes, rangeRecord, volumeConfig, writeRecord, type StoreFactory, type StoreUnderTest } from "./fixtures.js";

const v = (epoch: number, lsn: number): Version => ({ epoch: asEpoch(epoch), lsn: asLsn(lsn) });
const zeros = (blocks: number): Buffer => Buffer.alloc(blocks * BLOCK_SIZE);

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp): Promise<VolumeError> {
  const err: unknown = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VolumeError);
  const ve = err as VolumeError;
  expect(ve.code).toBe(code);
  if (message !== undefined) expect(ve.message).toMatch(message);
  return ve;
}

function sameRecords(got: readonly LogRecord[] | null, want: readonly LogRecord[]): void {
  expect(got).not.toBeNull();
  expect(got?.map((r) => ({ ...r, data: r.data === null ? null : Buffer.from(r.data) }))).toEqual(
    want.map((r) => ({ ...r, data: r.data === null ? null : Buffer.from(r.data) })),
  );
}

export function runReplicaStoreContract(name: string, factory: StoreFactory): void {
  describe(`ReplicaStore contract: ${name}`, () => {
    let sut: StoreUnderTest | null = null;
    const open = async (opts: Parameters<StoreFactory>[1] = {}, blockCount = 64): Promise<StoreUnderTest> => {
      sut = await factory(volumeConfig("vol1", blockCount), { regionBlocks: 4, ...opts });
      return sut;
    };
    afterEach(async () => {
      await sut?.cleanup();
      sut = null;
    });

    it("starts empty: no log, nothing applied, every block zeros", async () => {
      const { store } = await open();
      expect(store.head()).toEqual(VERSION_ZERO);
      expect(store.appliedVersion()).toEqual(VERSION_ZERO);
      expect(store.logStartLsn()).toBe(1);
      expect(store.superblock()).toMatchObject({ promisedEpoch: 0, commitLsn: 0, consistent: true, consistentThrough: null, unsurePastHead: false, sessions: [] });
      expect(store.logBase()).toEqual(VERSION_ZERO);
      expect(store.superblock().config).toEqual(volumeConfig());
      expect(store.regionVersions()).toHaveLength(16);
      expect(Buffer.from(await store.readBlocks(0, 64))).toEqual(zeros(64));
    });

    it("appends durably, in order, and reads the log back", async () => {
      const { store } = await open();
      const records = [writeRecord(1, 1, 0), writeRecord(1, 2, 5, 3), rangeRecord("trim", 1, 3, 5, 1), writeRecord(2, 4, 9)];
      // Four appends in flight at once share fdatasyncs.
      await Promise.all(records.map((r) => store.appendLog([r])));
      expect(store.head()).toEqual(v(2, 4));
      expect(store.stats().logRecordsAppended).toBe(4);
      expect(store.stats().logSyncs).toBeLessThan(4);
      sameRecords(await store.readLog(asLsn(1), asLsn(4)), records);
      sameRecords(await store.readLog(asLsn(2), asLsn(3)), records.slice(1, 3));
      expect(await store.readLog(asLsn(3), asLsn(5))).toBeNull();
      expect(await store.readLog(asLsn(0), asLsn(2))).toBeNull();
      expect(store.versionAt(asLsn(3))).toEqual(v(1, 3));
      expect(store.versionAt(asLsn(0))).toEqual(VERSION_ZERO);
      expect(store.versionAt(asLsn(9))).toBeNull();
    });

    it("owns the bytes it was given: reusing the caller's buffer changes nothing", async () => {
      const { store } = await open();
      const r = writeRecord(1, 1, 0);
      const original = Buffer.from(r.data ?? []);
      const pending = store.appendLog([r]);
      (r.data as Buffer).fill(0xee);
      await pending;
      await store.applyThrough(asLsn(1));
      expect(Buffer.from(await store.readBlocks(0, 1))).toEqual(original);
      expect(Buffer.from((await store.readLog(asLsn(1), asLsn(1)))?.[0]?.data ?? [])).toEqual(original);
    });

    it("holds only the records near its applied point: those appended further ahead are read back when applied or read", async () => {
      // Records of 4 blocks (16 KiB frames) in segments of 64 KiB: 200 of them fill slabs of the frame arena three times.
      const { store } = await open({ logUnappliedHeldBytesMax: 100 * 1024, logSegmentBytes: 64 * 1024 }, 64);
      const records = Array.from({ length: 200 }, (_, i) => writeRecord(1, i + 1, (i * 4) % 64, 4));
      // Groups of appends in flight together, then one at a time.
      for (let i = 0; i < 120; i += 8) await Promise.all(records.slice(i, i + 8).map((r) => store.appendLog([r])));
      for (const r of records.slice(120, 160)) await store.appendLog([r]);
      await store.applyThrough(asLsn(150));
      // About 100 KiB past the applied point are held (6 records), the rest of the 150 were read back.
      expect(store.stats().logRecordsReadBack).toBeGreaterThanOrEqual(140);
      expect(store.stats().logRecordsReadBack).toBeLessThanOrEqual(145);
      // A truncation into records never held, and records of a new epoch after it.
      await store.truncateLogAfter(asLsn(155));
      const kept = records.slice(0, 155);
      const after = Array.from({ length: 45 }, (_, i) => writeRecord(2, 156 + i, (i * 4 + 2) % 60, 4));
      for (const r of after) await store.appendLog([r]);
      const all = [...kept, ...after];
      // (Compared as hex: a deep equality of megabytes, byte by byte, takes seconds.)
      const described = (rs: readonly LogRecord[] | null | undefined): string[] => (rs ?? []).map((r) => `${r.epoch}:${r.lsn} ${r.kind} ${r.block}+${r.blockCount} ${Buffer.from(r.data ?? []).toString("hex")}`);
      expect(described(await store.readLog(asLsn(1), asLsn(200)))).toEqual(described(all));
      const expected = (through: number): string => {
        const want = zeros(64);
        for (const r of all.slice(0, through)) (r.data as Buffer).copy(want, r.block * BLOCK_SIZE);
        return want.toString("hex");
      };
      expect(Buffer.from(await store.readBlocks(0, 64)).toString("hex")).toBe(expected(150));
      await store.applyThrough(asLsn(200));
      expect(Buffer.from(await store.readBlocks(0, 64)).toString("hex")).toBe(expected(200));
      await store.checkpoint();
      expect(Buffer.from(await store.readBlocks(0, 64)).toString("hex")).toBe(expected(200));
      const again = await sut?.reopen();
      expect(Buffer.from((await again?.readBlocks(0, 64)) ?? []).toString("hex")).toBe(expected(200));
      expect(again?.stats().checksumMismatches).toBe(0);
    });

    it("holds every record when its applied point keeps up: none is read back", async () => {
      const { store } = await open({ logUnappliedHeldBytesMax: 100 * 1024, logSegmentBytes: 64 * 1024 }, 64);
      for (let lsn = 1; lsn <= 60; lsn++) {
        await store.appendLog([writeRecord(1, lsn, (lsn * 4) % 64, 4)]);
        if (lsn % 4 === 0) await store.applyThrough(asLsn(lsn));
      }
      await store.applyThrough(asLsn(60));
      expect(store.stats().logRecordsReadBack).toBe(0);
    });

    it("refuses a record that does not follow the head, a bad range or bad data, and changes nothing", async () => {
      const { store } = await open();
      await store.appendLog([writeRecord(2, 1, 0)]);
      await expectCode(store.appendLog([writeRecord(2, 3, 0)]), "INVALID_ARGUMENT", /does not follow the log's last record 2:1/);
      await expectCode(store.appendLog([writeRecord(1, 2, 0)]), "INVALID_ARGUMENT", /epoch is older/);
      await expectCode(store.appendLog([writeRecord(2, 2, 63, 2)]), "INVALID_ARGUMENT", /end past the volume's 64 blocks/);
      await expectCode(store.appendLog([{ ...writeRecord(2, 2, 0), data: Buffer.alloc(10) }]), "INVALID_ARGUMENT", /10 data bytes/);
      expect(store.head()).toEqual(v(2, 1));
      await store.appendLog([writeRecord(2, 2, 0)]);
      expect(store.head()).toEqual(v(2, 2));
    });

    it("drops a divergent tail with truncateLogAfter and takes the new epoch's records", async () => {
      const { store } = await open();
      await store.appendLog([1, 2, 3, 4, 5].map((l) => writeRecord(1, l, l)));
      await store.applyThrough(asLsn(2));
      await store.truncateLogAfter(asLsn(3));
      expect(store.head()).toEqual(v(1, 3));
      expect(await store.readLog(asLsn(3), asLsn(4))).toBeNull();
      await store.appendLog([writeRecord(2, 4, 30)]);
      expect(store.head()).toEqual(v(2, 4));
      sameRecords(await store.readLog(asLsn(4), asLsn(4)), [writeRecord(2, 4, 30)]);
      await expectCode(store.truncateLogAfter(asLsn(1)), "INVALID_ARGUMENT", /records through 2 are applied/);
      const again = await sut?.reopen();
      expect(again?.head()).toEqual(v(2, 4));
      sameRecords((await again?.readLog(asLsn(1), asLsn(4))) ?? null, [1, 2, 3].map((l) => writeRecord(1, l, l)).concat([writeRecord(2, 4, 30)]));
    });

    it("applies only through the given lsn: writes, write-zeroes and trims; never-written blocks read as zeros", async () => {
      const { store } = await open();
      await store.appendLog([
        writeRecord(1, 1, 10, 4), // blocks 10..13
        rangeRecord("zeroes", 1, 2, 11, 1),
        rangeRecord("trim", 1, 3, 13, 1),
        rangeRecord("mountStart", 1, 4, 0, 0),
        writeRecord(1, 5, 12),
      ]);
      await store.applyThrough(asLsn(3));
      expect(store.appliedVersion()).toEqual(v(1, 3));
      const got = Buffer.from(await store.readBlocks(9, 6));
      expect(got).toEqual(Buffer.concat([zeros(1), blockBytes(1, 10), zeros(1), blockBytes(1, 12), zeros(1), zeros(1)]));
      await expectCode(store.applyThrough(asLsn(6)), "INVALID_ARGUMENT", /log ends at 5/);
      await store.applyThrough(asLsn(5));
      expect(Buffer.from(await store.readBlocks(12, 1))).toEqual(blockBytes(5, 12));
      await expectCode(store.readBlocks(60, 5), "OUT_OF_RANGE");
      await expectCode(store.readBlocks(0, 0), "INVALID_ARGUMENT");
      // Blocks 10..13 are held in memory until a checkpoint writes them.
      expect(store.heldBlocks()).toBe(4);
      // The same after a checkpoint, now from the block data on disk.
      await store.checkpoint();
      expect(store.heldBlocks()).toBe(0);
      expect(Buffer.from(await store.readBlocks(9, 6))).toEqual(Buffer.concat([zeros(1), blockBytes(1, 10), zeros(1), blockBytes(5, 12), zeros(2)]));
      expect(store.stats().checksumMismatches).toBe(0);
    });

    it("gives each applied block's checksum (0 for zeros) from metadata, the same before and after a checkpoint", async () => {
      const { store } = await open();
      await store.appendLog([writeRecord(1, 1, 10, 4), rangeRecord("zeroes", 1, 2, 11, 1), rangeRecord("mountStart", 1, 3, 0, 0)]);
      await store.applyThrough(asLsn(3));
      const bytes = Buffer.from(await store.readBlocks(0, 16));
      const want = Array.from({ length: 16 }, (_, b) => {
        const block = bytes.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
        return block.every((x) => x === 0) ? 0 : blockCrc32(b, block);
      });
      // Blocks 0..15, region by region (whatever the fixture's region size).
      const first16 = async (): Promise<number[]> => {
        const out: number[] = [];
        for (let g = 0; out.length < 16; g++) out.push(...(await store.blockChecksums(g)));
        return out.slice(0, 16);
      };
      expect(await first16()).toEqual(want);
      expect(want.filter((c) => c !== 0)).toHaveLength(3);
      await store.checkpoint();
      expect(await first16()).toEqual(want);
    });

    it("gives a block of zeros checksum 0 however it became zeros (a write of zeros, zeroes, an install), before and after a checkpoint", async () => {
      const { store } = await open();
      // Block 9 of a three-block write is zeros; block 13 is written with zeros whole; 14 written, then zeroed.
      const three = { ...writeRecord(1, 1, 8, 3), data: Buffer.concat([blockBytes(1, 8), zeros(1), blockBytes(1, 10)]) };
      await store.appendLog([three, { ...writeRecord(1, 2, 13), data: zeros(1) }, writeRecord(1, 3, 14), rangeRecord("zeroes", 1, 4, 14, 1)]);
      await store.applyThrough(asLsn(4));
      // And region 1 (blocks 4-7) installed from a copy whose block 5 is zeros.
      await store.installRegion(1, Buffer.concat([blockBytes(9, 4), zeros(1), blockBytes(9, 6), blockBytes(9, 7)]), v(1, 4), asLsn(4));
      const sums = async (): Promise<number[]> => [...(await store.blockChecksums(1)), ...(await store.blockChecksums(2)), ...(await store.blockChecksums(3))];
      const want = [blockCrc32(4, blockBytes(9, 4)), 0, blockCrc32(6, blockBytes(9, 6)), blockCrc32(7, blockBytes(9, 7)), blockCrc32(8, blockBytes(1, 8)), 0, blockCrc32(10, blockBytes(1, 10)), 0, 0, 0, 0, 0];
      expect(await sums()).toEqual(want);
      await store.checkpoint();
      expect(await sums()).toEqual(want);
      expect(Buffer.from(await store.readBlocks(8, 8))).toEqual(Buffer.concat([blockBytes(1, 8), zeros(1), blockBytes(1, 10), zeros(5)]));
    });

    it("checksums what a record wrote over an installed region, not what was installed, through a checkpoint", async () => {
      const { store } = await open();
      // Region 1 (blocks 4-7) installed; then records rewrite block 5, zero block 6 and trim block 7.
      await store.installRegion(1, Buffer.concat([blockBytes(9, 4), blockBytes(9, 5), blockBytes(9, 6), blockBytes(9, 7)]), v(1, 0), asLsn(0));
      await store.appendLog([writeRecord(1, 1, 5), rangeRecord("zeroes", 1, 2, 6, 1), rangeRecord("trim", 1, 3, 7, 1)]);
      await store.applyThrough(asLsn(3));
      const want = [blockCrc32(4, blockBytes(9, 4)), blockCrc32(5, blockBytes(1, 5)), 0, 0];
      expect([...(await store.blockChecksums(1))]).toEqual(want);
      await store.checkpoint();
      expect([...(await store.blockChecksums(1))]).toEqual(want);
      expect(Buffer.from(await store.readBlocks(4, 4))).toEqual(Buffer.concat([blockBytes(9, 4), blockBytes(1, 5), zeros(2)]));
    });

    it("digests regions as regionDigest of their block checksums, all at one applied point, through a checkpoint", async () => {
      const { store } = await open();
      const each = async (): Promise<number[]> => {
        const out: number[] = [];
        for (let g = 0; g < 16; g++) out.push(regionDigest(await store.blockChecksums(g)));
        return out;
      };
      await store.appendLog([writeRecord(1, 1, 0, 6), writeRecord(1, 2, 21), rangeRecord("trim", 1, 3, 2, 1), writeRecord(1, 4, 63)]);
      await store.applyThrough(asLsn(4));
      const applied = await store.regionDigests(0, 16);
      expect(applied).toEqual(await each());
      expect(new Set(applied).size).toBeGreaterThan(2);
      await store.checkpoint();
      expect(await store.regionDigests(0, 16)).toEqual(applied);
      // Called before an apply, it gives the digests from before it.
      await store.appendLog([writeRecord(1, 5, 1)]);
      const [before, after] = await Promise.all([store.regionDigests(0, 2), store.applyThrough(asLsn(5)).then(() => store.regionDigests(0, 2))]);
      expect(before).toEqual(applied.slice(0, 2));
      expect(after[0]).not.toBe(before[0]);
      expect(after[1]).toBe(before[1]);
      expect(await store.regionDigests(15, 1)).toEqual([applied[15]]);
      await expectCode(store.regionDigests(15, 2), "OUT_OF_RANGE");
      await expectCode(store.regionDigests(0, 0), "INVALID_ARGUMENT");
    });

    it("versions each region by the last applied record that touched it", async () => {
      const { store } = await open();
      await store.appendLog([writeRecord(1, 1, 2, 4), writeRecord(2, 2, 40), rangeRecord("trim", 2, 3, 41, 1), rangeRecord("mountStart", 3, 4, 0, 0)]);
      await store.applyThrough(asLsn(4));
      const versions = store.regionVersions();
      expect(versions[0]).toEqual(v(1, 1)); // blocks 2,3
      expect(versions[1]).toEqual(v(1, 1)); // blocks 4,5
      expect(versions[10]).toEqual(v(2, 3)); // blocks 40..43
      expect(versions.filter((x) => x.lsn === 0)).toHaveLength(13);
      await store.checkpoint();
      const again = await sut?.reopen();
      expect(again?.regionVersions()).toEqual(versions);
    });

    it("reads only the blocks of a region written after a version, and installs such a copy over the blocks it names", async () => {
      const { store } = await open();
      // Region 2 (blocks 8..11): 1 writes 8, 2 writes 9, 3 trims 10, 4 writes 8 again; 11 is never written.
      await store.appendLog([writeRecord(1, 1, 8), writeRecord(1, 2, 9), rangeRecord("trim", 1, 3, 10, 1), writeRecord(1, 4, 8)]);
      await store.applyThrough(asLsn(4));
      const after2 = await store.readRegion(2, asLsn(2));
      expect(after2.version).toEqual(v(1, 4));
      expect([...(after2.blocks ?? [])]).toEqual([0b0101]);
      expect(Buffer.from(after2.data)).toEqual(Buffer.concat([blockBytes(4, 8), zeros(1)]));
      expect([...((await store.readRegion(2, asLsn(0))).blocks ?? [])]).toEqual([0b0111]);
      const none = await store.readRegion(2, asLsn(4));
      expect([...(none.blocks ?? [])]).toEqual([0]);
      expect(none.data.length).toBe(0);
      const whole = await store.readRegion(2);
      expect(whole.blocks).toBeNull();
      expect(whole.data.length).toBe(4 * BLOCK_SIZE);
      // Region 3 (blocks 12..15): local writes to 12 and 13; the copy carries 13 and 15 only.
      await store.appendLog([writeRecord(1, 5, 12), writeRecord(1, 6, 13)]);
      await store.applyThrough(asLsn(6));
      await store.installRegion(3, Buffer.concat([blockBytes(300, 13), blockBytes(301, 15)]), v(1, 6), asLsn(6), new Uint8Array([0b1010]));
      expect(Buffer.from(await store.readBlocks(12, 4))).toEqual(Buffer.concat([blockBytes(5, 12), blockBytes(300, 13), zeros(1), blockBytes(301, 15)]));
      expect(store.regionVersions()[3]).toEqual(v(1, 6));
      await expectCode(store.installRegion(3, blockBytes(302, 13), v(1, 6), asLsn(6), new Uint8Array([0b0011])), "INVALID_ARGUMENT", /bytes, expected/);
      await expectCode(store.installRegion(3, blockBytes(302, 13), v(1, 6), asLsn(6), new Uint8Array([0b10000])), "INVALID_ARGUMENT", /mask/);
      // Installed blocks count as written at the copy's version (12 and 14 too: the region is bounded as a whole).
      expect([...((await store.readRegion(3, asLsn(5))).blocks ?? [])]).toEqual([0b1111]);
      // After a restart every block is bounded by its region's version again: never too little,
      // also once a block of the region is written again.
      await store.checkpoint();
      const again = await sut?.reopen();
      expect([...((await again?.readRegion(2, asLsn(2)))?.blocks ?? [])]).toEqual([0b1111]);
      expect([...((await again?.readRegion(2, asLsn(4)))?.blocks ?? [])]).toEqual([0]);
      await again?.appendLog([writeRecord(1, 7, 9)]);
      await again?.applyThrough(asLsn(7));
      expect([...((await again?.readRegion(2, asLsn(2)))?.blocks ?? [])]).toEqual([0b1111]);
      expect([...((await again?.readRegion(2, asLsn(4)))?.blocks ?? [])]).toEqual([0b0010]);
    });

    it("reads a region with its version and installs a peer's region, re-applying newer local records", async () => {
      const { store } = await open();
      // Local history: 1 writes block 8, 2 writes block 9, 3 writes block 10 (all region 2: blocks 8..11).
      await store.appendLog([writeRecord(1, 1, 8), writeRecord(1, 2, 9), writeRecord(1, 3, 10)]);
      await store.applyThrough(asLsn(3));
      const local = await store.readRegion(2);
      expect(local.version).toEqual(v(1, 3));
      expect(Buffer.from(local.data)).toEqual(Buffer.concat([blockBytes(1, 8), blockBytes(2, 9), blockBytes(3, 10), zeros(1)]));
      // The peer's copy was taken at lsn 2: it holds its own bytes for 8 and 9, and lacks record 3.
      const peer = Buffer.concat([blockBytes(100, 8), blockBytes(101, 9), zeros(1), blockBytes(102, 11)]);
      await store.installRegion(2, peer, v(1, 2), asLsn(2));
      const installed = await store.readRegion(2);
      expect(Buffer.from(installed.data)).toEqual(Buffer.concat([blockBytes(100, 8), blockBytes(101, 9), blockBytes(3, 10), blockBytes(102, 11)]));
      expect(installed.version).toEqual(v(1, 3));
      // A region installed at a newer version than a record is not overwritten by that record when it is applied later.
      await store.appendLog([writeRecord(1, 4, 20), writeRecord(1, 5, 21)]);
      await store.installRegion(5, Buffer.concat([blockBytes(200, 20), blockBytes(201, 21), zeros(2)]), v(1, 5), asLsn(5));
      await store.applyThrough(asLsn(5));
      expect(Buffer.from(await store.readBlocks(20, 2))).toEqual(Buffer.concat([blockBytes(200, 20), blockBytes(201, 21)]));
      expect(store.regionVersions()[5]).toEqual(v(1, 5));
      await store.checkpoint();
      const again = await sut?.reopen();
      expect(Buffer.from((await again?.readBlocks(8, 4)) ?? [])).toEqual(Buffer.from(installed.data));
      expect(Buffer.from((await again?.readBlocks(20, 2)) ?? [])).toEqual(Buffer.concat([blockBytes(200, 20), blockBytes(201, 21)]));
      await expectCode(again?.installRegion(16, zeros(4), v(1, 1), asLsn(1)) ?? Promise.resolve(), "OUT_OF_RANGE");
      await expectCode(again?.installRegion(3, zeros(3), v(1, 1), asLsn(1)) ?? Promise.resolve(), "INVALID_ARGUMENT");
    });

    it("resets the log for a region resync: snapshot as head, inconsistent, block data kept", async () => {
      const { store } = await open();
      await store.appendLog([writeRecord(1, 1, 0), writeRecord(1, 2, 1)]);
      await store.applyThrough(asLsn(2));
      const sessions = [{ clientId: asClientId("other"), clientSeq: 77, lsn: asLsn(40) }];
      await store.resetLogForResync(v(3, 50), sessions, v(3, 50));
      expect(store.head()).toEqual(v(3, 50));
      expect(store.logBase()).toEqual(v(3, 50));
      expect(store.logStartLsn()).toBe(51);
      expect(store.appliedVersion()).toEqual(v(3, 50));
      expect(store.superblock()).toMatchObject({ consistent: false, sessions });
      expect(await store.readLog(asLsn(1), asLsn(2))).toBeNull();
      expect(Buffer.from(await store.readBlocks(0, 2))).toEqual(Buffer.concat([blockBytes(1, 0), blockBytes(2, 1)]));
      await expectCode(store.appendLog([writeRecord(3, 3, 0)]), "INVALID_ARGUMENT");
      await store.appendLog([writeRecord(3, 51, 2)]);
      await store.applyThrough(asLsn(51));
      await store.writeSuperblock({ consistent: true });
      const again = await sut?.crash();
      expect(again?.head()).toEqual(v(3, 51));
      // The most recent client first (foldSessions' order).
      expect(again?.superblock()).toMatchObject({ consistent: true, consistentThrough: null, sessions: [{ clientId: "c1", clientSeq: 51, lsn: 51 }, sessions[0]] });
      expect(Buffer.from((await again?.readBlocks(0, 3)) ?? [])).toEqual(Buffer.concat([blockBytes(1, 0), blockBytes(2, 1), blockBytes(51, 2)]));
    });

    describe("region resync start", () => {
      // Record l writes the first block of region l (regions of 4 blocks), so a region's version names the record.
      const inRegion = (epoch: number, l: number): LogRecord => writeRecord(epoch, l, 4 * l);
      const regionBlock = async (store: StoreUnderTest["store"] | undefined, region: number): Promise<Buffer> =>
        Buffer.from((await store?.readBlocks(4 * region, 1)) ?? []);
      const sessions = [{ clientId: asClientId("src"), clientSeq: 9, lsn: asLsn(2) }];

      it("keeps the records after the snapshot when the log holds it; the applied point moves back to the snapshot", async () => {
        const { store } = await open();
        const records = [1, 2, 3, 4, 5, 6].map((l) => inRegion(1, l));
        await store.appendLog(records);
        await store.applyThrough(asLsn(4));
        await store.resetLogForResync(v(1, 2), sessions, v(1, 6));
        expect(store.head()).toEqual(v(1, 6));
        expect(store.logBase()).toEqual(v(1, 2));
        expect(store.logStartLsn()).toBe(3);
        expect(store.appliedVersion()).toEqual(v(1, 2));
        expect(store.superblock()).toMatchObject({ consistent: false, consistentThrough: v(1, 6), sessions });
        sameRecords(await store.readLog(asLsn(3), asLsn(6)), records.slice(2));
        expect(await store.readLog(asLsn(2), asLsn(6))).toBeNull();
        // Block data is kept as it is, records 3 and 4 included.
        for (const l of [1, 2, 3, 4]) expect(await regionBlock(store, l)).toEqual(blockBytes(l, 4 * l));
        // Appends continue after the kept tail, and the kept records (3 and 4 read back from the log) apply again.
        await store.appendLog([inRegion(1, 7)]);
        expect(store.head()).toEqual(v(1, 7));
        await store.applyThrough(asLsn(5));
        expect(store.regionVersions().slice(2, 6)).toEqual([v(1, 2), REGION_DIRTY, REGION_DIRTY, REGION_DIRTY]);
        for (const l of [3, 4, 5]) expect(await regionBlock(store, l)).toEqual(blockBytes(l, 4 * l));

        // A crash now: the reset was durable, and so was the block data it kept.
        const again = await sut?.crash();
        expect(again?.head()).toEqual(v(1, 7));
        expect(again?.logBase()).toEqual(v(1, 2));
        expect(again?.superblock()).toMatchObject({ consistent: false, consistentThrough: v(1, 6), sessions });
        sameRecords((await again?.readLog(asLsn(3), asLsn(7))) ?? null, [...records.slice(2), inRegion(1, 7)]);
        // Replayed from the snapshot through the durable commit point (4, what the reset made durable).
        expect(again?.appliedVersion()).toEqual(v(1, 4));
        for (const l of [1, 2, 3, 4]) expect(await regionBlock(again, l)).toEqual(blockBytes(l, 4 * l));
        // Records applied again while inconsistent leave their regions dirty; the others keep their real versions.
        expect(again?.regionVersions().slice(0, 5)).toEqual([VERSION_ZERO, v(1, 1), v(1, 2), REGION_DIRTY, REGION_DIRTY]);
        await again?.applyThrough(asLsn(7));
        expect(again?.regionVersions().slice(5, 8)).toEqual([REGION_DIRTY, REGION_DIRTY, REGION_DIRTY]);
        for (const l of [5, 6, 7]) expect(await regionBlock(again, l)).toEqual(blockBytes(l, 4 * l));
      });

      it("keeps every record when the snapshot is the log's base", async () => {
        // One record per segment, so a checkpoint with no retained tail trims exactly through the applied point.
        const { store } = await open({ logRetainedBytesMax: 0, logSegmentBytes: 1 });
        for (const l of [1, 2, 3]) await store.appendLog([inRegion(1, l)]);
        await store.applyThrough(asLsn(2));
        await store.checkpoint();
        expect(store.logBase()).toEqual(v(1, 2));
        await store.resetLogForResync(v(1, 2), sessions, v(1, 3));
        expect(store.head()).toEqual(v(1, 3));
        expect(store.logBase()).toEqual(v(1, 2));
        sameRecords(await store.readLog(asLsn(3), asLsn(3)), [inRegion(1, 3)]);
        // A base of another epoch at the same lsn is not held: everything goes.
        await store.resetLogForResync(v(2, 2), sessions, v(2, 2));
        expect(store.head()).toEqual(v(2, 2));
        expect(await store.readLog(asLsn(3), asLsn(3))).toBeNull();
      });

      it("drops every record when the record at the snapshot's lsn has another epoch", async () => {
        const { store } = await open();
        await store.appendLog([1, 2, 3, 4, 5].map((l) => inRegion(1, l)));
        await store.applyThrough(asLsn(2));
        await store.resetLogForResync(v(2, 3), sessions, v(2, 3));
        expect(store.head()).toEqual(v(2, 3));
        expect(store.logBase()).toEqual(v(2, 3));
        expect(store.logStartLsn()).toBe(4);
        expect(store.appliedVersion()).toEqual(v(2, 3));
        expect(await store.readLog(asLsn(4), asLsn(5))).toBeNull();
        expect(store.versionAt(asLsn(4))).toBeNull();
        await expectCode(store.appendLog([inRegion(1, 4)]), "INVALID_ARGUMENT", /epoch is older than the log's last record 2:3/);
        await store.appendLog([inRegion(2, 4)]);
        const again = await sut?.crash();
        expect(again?.head()).toEqual(v(2, 4));
        expect(again?.logBase()).toEqual(v(2, 3));
        sameRecords((await again?.readLog(asLsn(4), asLsn(4))) ?? null, [inRegion(2, 4)]);
        expect(await regionBlock(again, 1)).toEqual(blockBytes(1, 4));
      });

      it("drops every record when the log is shorter than the snapshot", async () => {
        const { store } = await open();
        await store.appendLog([1, 2].map((l) => inRegion(1, l)));
        await store.applyThrough(asLsn(1));
        await store.resetLogForResync(v(1, 10), sessions, v(1, 10));
        expect(store.head()).toEqual(v(1, 10));
        expect(store.logBase()).toEqual(v(1, 10));
        expect(store.appliedVersion()).toEqual(v(1, 10));
        expect(await store.readLog(asLsn(2), asLsn(2))).toBeNull();
        await expectCode(store.appendLog([inRegion(1, 3)]), "INVALID_ARGUMENT", /does not follow the log's last record 1:10/);
        const again = await sut?.reopen();
        expect(again?.head()).toEqual(v(1, 10));
        expect(again?.superblock()).toMatchObject({ consistent: false, consistentThrough: v(1, 10) });
      });

      it("keeps consistentThrough durably until the replica is consistent again", async () => {
        const { store } = await open();
        await store.appendLog([inRegion(1, 1)]);
        await store.resetLogForResync(v(1, 1), [], v(1, 5));
        await store.writeSuperblock({ promisedEpoch: asEpoch(3) });
        expect(store.superblock().consistentThrough).toEqual(v(1, 5));
        const again = await sut?.reopen();
        expect(again?.superblock()).toMatchObject({ consistent: false, consistentThrough: v(1, 5), promisedEpoch: 3 });
        await again?.writeSuperblock({ consistent: true });
        expect(again?.superblock()).toMatchObject({ consistent: true, consistentThrough: null });
        const third = await sut?.crash();
        expect(third?.superblock()).toMatchObject({ consistent: true, consistentThrough: null });
      });

      it("while inconsistent, applying dirties a region not installed since the reset and versions an installed one", async () => {
        const { store } = await open();
        await store.appendLog([inRegion(1, 1), inRegion(1, 2)]);
        await store.applyThrough(asLsn(2));
        // Installed before the reset: that install no longer counts.
        await store.installRegion(3, Buffer.concat([blockBytes(90, 12), zeros(3)]), v(1, 2), asLsn(2));
        await store.resetLogForResync(v(1, 2), [], v(1, 2));
        await store.installRegion(4, Buffer.concat([blockBytes(91, 16), zeros(3)]), v(1, 1), asLsn(2));
        // Records 3, 4, 5 touch regions 3, 4 and 5.
        await store.appendLog([3, 4, 5].map((l) => inRegion(1, l)));
        await store.applyThrough(asLsn(5));
        expect(store.regionVersions().slice(1, 6)).toEqual([v(1, 1), v(1, 2), REGION_DIRTY, v(1, 4), REGION_DIRTY]);
        for (const l of [3, 4, 5]) expect(await regionBlock(store, l)).toEqual(blockBytes(l, 4 * l));
        expect(Buffer.from(await store.readBlocks(17, 1))).toEqual(zeros(1));
        // Installing a region copied at lsn 4 re-applies record 5 with its real version.
        await store.installRegion(5, Buffer.concat([zeros(1), blockBytes(92, 21), zeros(2)]), v(1, 2), asLsn(4));
        expect(store.regionVersions()[5]).toEqual(v(1, 5));
        expect(Buffer.from(await store.readBlocks(20, 2))).toEqual(Buffer.concat([blockBytes(5, 20), blockBytes(92, 21)]));
        await store.checkpoint();
        // Dirty versions are durable; the set of installed regions is not.
        const again = await sut?.reopen();
        expect(again?.regionVersions().slice(3, 6)).toEqual([REGION_DIRTY, v(1, 4), v(1, 5)]);
        await again?.appendLog([inRegion(1, 6), writeRecord(1, 7, 17)]);
        await again?.applyThrough(asLsn(7));
        expect(again?.regionVersions().slice(4, 7)).toEqual([REGION_DIRTY, v(1, 5), REGION_DIRTY]);
        // Consistent again: records get real versions.
        await again?.writeSuperblock({ consistent: true });
        await again?.appendLog([writeRecord(1, 8, 12)]);
        await again?.applyThrough(asLsn(8));
        expect(again?.regionVersions()[3]).toEqual(v(1, 8));
      });

      it("consistent again, a region still dirty takes the version of the last record applied to it since the reset, durably", async () => {
        const { store } = await open();
        await store.appendLog([inRegion(1, 1), inRegion(1, 2)]);
        await store.applyThrough(asLsn(2));
        await store.resetLogForResync(v(1, 2), [], v(1, 2));
        // Region 3 dirtied during a resync that a second reset cut short: its records since are unknown to the next one.
        await store.appendLog([inRegion(1, 3)]);
        await store.applyThrough(asLsn(3));
        await store.resetLogForResync(v(1, 3), [], v(1, 3));
        // Records 4..6 touch regions 5, 6 and 5 again; region 6 is then installed (copied at 6).
        await store.appendLog([writeRecord(1, 4, 20), writeRecord(1, 5, 24), writeRecord(1, 6, 21)]);
        await store.applyThrough(asLsn(6));
        expect(store.regionVersions().slice(3, 7)).toEqual([REGION_DIRTY, VERSION_ZERO, REGION_DIRTY, REGION_DIRTY]);
        await store.installRegion(6, Buffer.concat([blockBytes(5, 24), zeros(3)]), v(1, 5), asLsn(6));
        await store.writeSuperblock({ consistent: true });
        expect(store.regionVersions().slice(3, 7)).toEqual([REGION_DIRTY, VERSION_ZERO, v(1, 6), v(1, 5)]);
        const again = await sut?.crash();
        expect(again?.superblock().consistent).toBe(true);
        expect(again?.regionVersions().slice(3, 7)).toEqual([REGION_DIRTY, VERSION_ZERO, v(1, 6), v(1, 5)]);
        expect(Buffer.from((await again?.readBlocks(20, 2)) ?? [])).toEqual(Buffer.concat([blockBytes(4, 20), blockBytes(6, 21)]));
      });

      it("refuses a snapshot that is not a version, and changes nothing", async () => {
        const { store } = await open();
        await store.appendLog([inRegion(1, 1)]);
        await expectCode(store.resetLogForResync(v(-1, 2), [], v(1, 1)), "INVALID_ARGUMENT", /snapshot -1:2 is not a version/);
        await expectCode(store.installRegion(1, zeros(4), REGION_DIRTY, asLsn(0)), "INVALID_ARGUMENT", /-1:-1 is not a version/);
        expect(store.head()).toEqual(v(1, 1));
        expect(store.superblock().consistent).toBe(true);
      });
    });

    describe("call order", () => {
      it("applies calls made without awaiting in the order they were made, and resolves them in that order", async () => {
        const { store } = await open();
        const resolved: string[] = [];
        const calls: [string, Promise<void>][] = [
          ["append 1-5", store.appendLog([1, 2, 3, 4, 5].map((l) => writeRecord(1, l, l)))],
          ["apply 2", store.applyThrough(asLsn(2))],
          ["truncate after 3", store.truncateLogAfter(asLsn(3))],
          ["append 2:4", store.appendLog([writeRecord(2, 4, 30)])],
          ["promise 2", store.writeSuperblock({ promisedEpoch: asEpoch(2) })],
          ["append 2:5", store.appendLog([writeRecord(2, 5, 31)])],
          ["apply 5", store.applyThrough(asLsn(5))],
          ["reset at 2:4", store.resetLogForResync(v(2, 4), [], v(2, 5))],
          ["append 2:6", store.appendLog([writeRecord(2, 6, 32)])],
          ["apply 6", store.applyThrough(asLsn(6))],
          ["install region 0", store.installRegion(0, Buffer.concat([blockBytes(80, 0), blockBytes(1, 1), blockBytes(2, 2), blockBytes(3, 3)]), v(1, 1), asLsn(6))],
          ["checkpoint", store.checkpoint()],
        ];
        await Promise.all(calls.map(([name, p]) => p.then(() => resolved.push(name))));
        expect(resolved).toEqual(calls.map(([name]) => name));
        expect(store.head()).toEqual(v(2, 6));
        expect(store.logBase()).toEqual(v(2, 4));
        expect(store.appliedVersion()).toEqual(v(2, 6));
        expect(store.superblock()).toMatchObject({ promisedEpoch: 2, consistent: false, consistentThrough: v(2, 5) });
        // Record 5 of epoch 1 was cut before it was applied; 2:5 and 2:6 were applied again after the reset.
        sameRecords(await store.readLog(asLsn(5), asLsn(6)), [writeRecord(2, 5, 31), writeRecord(2, 6, 32)]);
        expect(Buffer.from(await store.readBlocks(0, 6))).toEqual(
          Buffer.concat([blockBytes(80, 0), blockBytes(1, 1), blockBytes(2, 2), blockBytes(3, 3), zeros(1), zeros(1)]),
        );
        expect(Buffer.from(await store.readBlocks(30, 3))).toEqual(Buffer.concat([blockBytes(4, 30), blockBytes(5, 31), blockBytes(6, 32)]));
        const again = await sut?.crash();
        expect(again?.head()).toEqual(v(2, 6));
        expect(Buffer.from((await again?.readBlocks(0, 1)) ?? [])).toEqual(blockBytes(80, 0));
      });

      it("fails a call refused in its turn without holding up the ones after it", async () => {
        const { store } = await open();
        const first = store.appendLog([writeRecord(1, 1, 0)]);
        const truncate = store.truncateLogAfter(asLsn(0));
        const stale = store.appendLog([writeRecord(1, 2, 1)]);
        const next = store.appendLog([writeRecord(1, 1, 2)]);
        await first;
        await truncate;
        await expectCode(stale, "INVALID_ARGUMENT", /does not follow the log's last record 0:0/);
        await next;
        expect(store.head()).toEqual(v(1, 1));
        sameRecords(await store.readLog(asLsn(1), asLsn(1)), [writeRecord(1, 1, 2)]);
      });

      it("keeps group commit: appends queued behind a superblock write share one fdatasync", async () => {
        const { store } = await open();
        await store.appendLog([writeRecord(1, 1, 0)]);
        const before = store.stats().logSyncs;
        const promise = store.writeSuperblock({ promisedEpoch: asEpoch(1) });
        await Promise.all([2, 3, 4, 5].map((l) => store.appendLog([writeRecord(1, l, l)])));
        await promise;
        expect(store.head()).toEqual(v(1, 5));
        expect(store.stats().logSyncs - before).toBe(1);
      });
    });

    it("checkpoints: trims applied log segments beyond the retained tail, keeps what is retained readable", async () => {
      const record = writeRecord(1, 1, 0).data?.length ?? 0;
      const { store } = await open({ logSegmentBytes: 4 * record, logRetainedBytesMax: 8 * (record + 100) });
      const records = Array.from({ length: 40 }, (_, i) => writeRecord(1, i + 1, i % 64));
      for (const r of records) await store.appendLog([r]);
      await store.applyThrough(asLsn(30));
      await store.checkpoint();
      expect(store.superblock().commitLsn).toBeGreaterThanOrEqual(30);
      // 30 applied records in segments of 4: at most 8 applied records' bytes stay, in whole segments.
      const start = store.logStartLsn();
      expect(start).toBeGreaterThan(20);
      expect(start).toBeLessThanOrEqual(31);
      sameRecords(await store.readLog(start, asLsn(40)), records.slice(start - 1));
      expect(await store.readLog(asLsn(start - 1), asLsn(40))).toBeNull();
      expect(store.versionAt(asLsn(start - 1))).toEqual(v(1, start - 1));
      const again = await sut?.reopen();
      expect(again?.logStartLsn()).toBe(start);
      sameRecords((await again?.readLog(start, asLsn(40))) ?? null, records.slice(start - 1));
      expect(Buffer.from((await again?.readBlocks(0, 30)) ?? [])).toEqual(Buffer.concat(records.slice(0, 30).map((r) => Buffer.from(r.data ?? []))));
    });

    it("keeps every acknowledged record across segments created ahead, a truncation back into an earlier segment, and crashes", async () => {
      // Segments of three records: the one after a full segment is created ahead, while the group that fills it is written.
      const record = writeRecord(1, 1, 0).data?.length ?? 0;
      const { store } = await open({ logSegmentBytes: 3 * record });
      const first = Array.from({ length: 9 }, (_, i) => writeRecord(1, i + 1, i % 64));
      for (const r of first) await store.appendLog([r]);
      // Back into the second segment (the segment made ahead for lsn 10 is never used), then another history from there.
      await store.truncateLogAfter(asLsn(5));
      const second = Array.from({ length: 10 }, (_, i) => writeRecord(2, i + 6, (i + 20) % 64));
      await Promise.all(second.map((r) => store.appendLog([r])));
      const again = await sut?.crash();
      expect(again?.head()).toEqual(v(2, 15));
      expect(again?.superblock().unsurePastHead).toBe(false);
      expect(again?.recoveryCut()).toBeNull();
      sameRecords((await again?.readLog(asLsn(1), asLsn(15))) ?? null, [...first.slice(0, 5), ...second]);
      const third = [writeRecord(2, 16, 1), writeRecord(2, 17, 2), writeRecord(2, 18, 3)];
      for (const r of third) await again?.appendLog([r]);
      const fourth = await sut?.crash();
      expect(fourth?.head()).toEqual(v(2, 18));
      expect(fourth?.superblock().unsurePastHead).toBe(false);
      sameRecords((await fourth?.readLog(asLsn(1), asLsn(18))) ?? null, [...first.slice(0, 5), ...second, ...third]);
    });

    it("with no retained tail, a checkpoint of everything leaves an empty log that appends continue", async () => {
      const { store } = await open({ logRetainedBytesMax: 0 });
      await store.appendLog([writeRecord(1, 1, 0), writeRecord(1, 2, 1)]);
      await store.applyThrough(asLsn(2));
      await store.checkpoint();
      expect(store.logStartLsn()).toBe(3);
      expect(store.versionAt(asLsn(2))).toEqual(v(1, 2));
      await store.appendLog([writeRecord(1, 3, 2)]);
      const again = await sut?.crash();
      expect(again?.head()).toEqual(v(1, 3));
      expect(again?.logStartLsn()).toBe(3);
    });

    it("takes appends while a checkpoint trims the log: every one of them survives a crash, none is trimmed", async () => {
      // Segments of one record and no retained tail: the checkpoint trims every segment it may, the active one too.
      const { store } = await open({ logRetainedBytesMax: 0, logSegmentBytes: 1 });
      await store.appendLog([1, 2, 3].map((l) => writeRecord(1, l, l)));
      await store.applyThrough(asLsn(3));
      const checkpoint = store.checkpoint();
      const appends = [4, 5, 6, 7].map((l) => store.appendLog([writeRecord(1, l, l)]));
      await Promise.all([checkpoint, ...appends]);
      expect(store.logStartLsn()).toBe(4);
      expect(store.head()).toEqual(v(1, 7));
      const again = await sut?.crash();
      expect(again?.head()).toEqual(v(1, 7));
      expect(again?.appliedVersion()).toEqual(v(1, 3));
      sameRecords((await again?.readLog(asLsn(4), asLsn(7))) ?? null, [4, 5, 6, 7].map((l) => writeRecord(1, l, l)));
      await again?.applyThrough(asLsn(7));
      expect(Buffer.from((await again?.readBlocks(1, 7)) ?? [])).toEqual(Buffer.concat([1, 2, 3, 4, 5, 6, 7].map((l) => blockBytes(l, l))));
    });

    it("checkpoints scattered and adjacent blocks of many regions: every block and checksum is on disk after a crash", async () => {
      const { store } = await open({}, 512);
      // Runs of adjacent blocks, single blocks far apart, zeroed blocks in between, and a block written twice.
      const records = [
        writeRecord(1, 1, 0, 8),
        writeRecord(1, 2, 100),
        writeRecord(1, 3, 300, 20),
        rangeRecord("zeroes", 1, 4, 305, 3),
        writeRecord(1, 5, 511),
        writeRecord(1, 6, 101),
        writeRecord(1, 7, 100),
        ...Array.from({ length: 40 }, (_, i) => writeRecord(1, 8 + i, (13 * i + 20) % 500)),
      ];
      await store.appendLog(records);
      await store.applyThrough(asLsn(records.length));
      const before = Buffer.from(await store.readBlocks(0, 512));
      await store.checkpoint();
      const again = await sut?.crash();
      expect(again?.appliedVersion()).toEqual(v(1, records.length));
      expect(Buffer.from((await again?.readBlocks(0, 512)) ?? [])).toEqual(before);
      expect(again?.regionVersions()[25]).toEqual(v(1, 7));
      expect(again?.stats().checksumMismatches).toBe(0);
    });

    it("applies, installs and reads while a checkpoint writes; the checkpoint records only what it took", async () => {
      const { store } = await open();
      // 1-4 write blocks 0-3 (region 0); 5 and 6 write blocks 0 and 1 again.
      await store.appendLog([1, 2, 3, 4, 5, 6].map((l) => writeRecord(1, l, (l - 1) % 4)));
      await store.writeSuperblock({ commitLsn: asLsn(6) });
      await store.applyThrough(asLsn(4));
      const done: string[] = [];
      const checkpoint = store.checkpoint().then(() => done.push("checkpoint"));
      const apply = store.applyThrough(asLsn(6)).then(() => done.push("apply"));
      const copy = Buffer.concat([blockBytes(300, 12), blockBytes(301, 13), blockBytes(302, 14), blockBytes(303, 15)]);
      const install = store.installRegion(3, copy, v(1, 6), asLsn(6)).then(() => done.push("install"));
      await apply;
      // Blocks 0 and 1 from the new overlay, 2 and 3 from what the checkpoint is writing (or wrote), the region installed.
      const current = Buffer.concat([blockBytes(5, 0), blockBytes(6, 1), blockBytes(3, 2), blockBytes(4, 3)]);
      expect(Buffer.from(await store.readBlocks(0, 4))).toEqual(current);
      await Promise.all([checkpoint, install]);
      // Neither the apply nor the install waited for the checkpoint's writes.
      expect(done).toEqual(["apply", "install", "checkpoint"]);
      expect(Buffer.from(await store.readBlocks(0, 4))).toEqual(current);
      expect(Buffer.from(await store.readBlocks(12, 4))).toEqual(copy);
      expect((await store.blockChecksums(0))[2]).toBe(blockCrc32(2, blockBytes(3, 2)));
      // The checkpoint took the applied point of its call (lsn 4): after a crash 5 and 6 come back from the log, the install (not checkpointed) is gone.
      const again = await sut?.crash();
      expect(again?.appliedVersion()).toEqual(v(1, 6));
      expect(Buffer.from((await again?.readBlocks(0, 4)) ?? [])).toEqual(current);
      expect(Buffer.from((await again?.readBlocks(12, 4)) ?? [])).toEqual(zeros(4));
      expect(again?.regionVersions()[3]).toEqual(VERSION_ZERO);
      expect(again?.stats().checksumMismatches).toBe(0);
      // The next checkpoint writes the rest: after another crash the install is there too.
      await again?.installRegion(3, copy, v(1, 6), asLsn(6));
      await again?.checkpoint();
      const third = await sut?.crash();
      expect(Buffer.from((await third?.readBlocks(12, 4)) ?? [])).toEqual(copy);
      expect(third?.regionVersions()[3]).toEqual(v(1, 6));
    });

    it("a resync reset checkpoints after a background checkpoint's write ends, and that one's older applied point is never recorded", async () => {
      const { store } = await open();
      await store.appendLog([1, 2, 3].map((l) => writeRecord(1, l, l)));
      await store.writeSuperblock({ commitLsn: asLsn(3) });
      await store.applyThrough(asLsn(2));
      const checkpoint = store.checkpoint();
      await store.applyThrough(asLsn(3));
      // A reset at 3 keeps the block data: it checkpoints it first, after the background write ends.
      await store.resetLogForResync(v(1, 3), [], v(1, 3));
      await checkpoint;
      // The background checkpoint's applied point (2) did not overwrite the reset's (3).
      const again = await sut?.crash();
      expect(again?.appliedVersion()).toEqual(v(1, 3));
      expect(again?.superblock().consistent).toBe(false);
      expect(Buffer.from((await again?.readBlocks(1, 3)) ?? [])).toEqual(Buffer.concat([blockBytes(1, 1), blockBytes(2, 2), blockBytes(3, 3)]));
    });

    it("keeps superblock fields across reopen; the promised epoch never goes back", async () => {
      const { store } = await open();
      await store.writeSuperblock({ promisedEpoch: asEpoch(7), commitLsn: asLsn(0) });
      await store.writeSuperblock({ unsurePastHead: true, config: { ...volumeConfig(), configVersion: 2 } });
      await expect(store.writeSuperblock({ promisedEpoch: asEpoch(6) })).rejects.toThrow(/promised epoch goes back/);
      const want = store.superblock();
      expect(want).toMatchObject({ promisedEpoch: 7, unsurePastHead: true, consistent: true });
      expect(want.config.configVersion).toBe(2);
      const again = await sut?.reopen();
      expect(again?.superblock()).toEqual(want);
    });

    it("remembers, per client, the highest sequence number applied at a checkpoint", async () => {
      const { store } = await open();
      await store.appendLog([writeRecord(1, 1, 0, 1, 5, "a"), writeRecord(1, 2, 1, 1, 9, "b"), writeRecord(1, 3, 2, 1, 6, "a"), writeRecord(1, 4, 3, 1, 10, "b")]);
      await store.applyThrough(asLsn(3));
      expect(store.superblock().sessions).toEqual([]);
      await store.checkpoint();
      expect(store.superblock().sessions).toEqual([
        { clientId: "a", clientSeq: 6, lsn: 3 },
        { clientId: "b", clientSeq: 9, lsn: 2 },
      ]);
    });

    it("survives a crash: acknowledged records stay, applied-but-not-checkpointed records come back from the log", async () => {
      const { store } = await open();
      await store.appendLog([1, 2, 3, 4, 5, 6].map((l) => writeRecord(1, l, l)));
      await store.applyThrough(asLsn(2));
      await store.checkpoint();
      await store.writeSuperblock({ commitLsn: asLsn(4) });
      await store.applyThrough(asLsn(5));
      const again = await sut?.crash();
      expect(again?.head()).toEqual(v(1, 6));
      // Replayed through the durable commit point; the driver applies the rest when it learns it is committed.
      expect(again?.appliedVersion()).toEqual(v(1, 4));
      expect(Buffer.from((await again?.readBlocks(1, 5)) ?? [])).toEqual(Buffer.concat([blockBytes(1, 1), blockBytes(2, 2), blockBytes(3, 3), blockBytes(4, 4), zeros(1)]));
      expect(again?.superblock().unsurePastHead).toBe(false);
    });

    it("takes itself out of service on ENOSPC writing the log, and never retries", async () => {
      let failWrites = false;
      let logSyncs = 0;
      const { store } = await open({
        faults: {
          beforeWrite: (file) => (failWrites && file.startsWith("log-") ? diskError("ENOSPC", "write", file) : undefined),
          beforeSync: (file) => {
            if (file.startsWith("log-")) logSyncs++;
            return undefined;
          },
        },
      });
      await store.appendLog([writeRecord(1, 1, 0)]);
      failWrites = true;
      const syncsBefore = logSyncs;
      await expectCode(store.appendLog([writeRecord(1, 2, 0)]), "DISK_FAILED", /out of service after a disk error: ENOSPC/);
      failWrites = false;
      await expectCode(store.appendLog([writeRecord(1, 2, 0)]), "DISK_FAILED");
      await expectCode(store.readBlocks(0, 1), "DISK_FAILED");
      await expectCode(store.checkpoint(), "DISK_FAILED");
      expect(logSyncs).toBe(syncsBefore);
      expect(store.head()).toEqual(v(1, 1));
    });

    it("takes itself out of service on EIO from fdatasync: every append in the group fails, the sync is not retried", async () => {
      let failSyncs = 0;
      let syncCalls = 0;
      const { store } = await open({
        faults: {
          beforeSync: (file) => {
            if (!file.startsWith("log-")) return undefined;
            syncCalls++;
            if (failSyncs > 0) {
              failSyncs--;
              return diskError("EIO", "fdatasync", file);
            }
            return undefined;
          },
        },
      });
      await store.appendLog([writeRecord(1, 1, 0)]);
      failSyncs = 1;
      const before = syncCalls;
      const results = await Promise.allSettled([2, 3, 4].map((l) => store.appendLog([writeRecord(1, l, l)])));
      for (const r of results) {
        expect(r.status).toBe("rejected");
        expect(((r as PromiseRejectedResult).reason as VolumeError).code).toBe("DISK_FAILED");
      }
      expect(syncCalls - before).toBeLessThanOrEqual(2);
      const after = syncCalls;
      await expectCode(store.appendLog([writeRecord(1, 5, 0)]), "DISK_FAILED");
      await expectCode(store.writeSuperblock({ commitLsn: asLsn(1) }), "DISK_FAILED");
      expect(syncCalls).toBe(after);
    });

    it("takes itself out of service on EIO syncing block data at a checkpoint", async () => {
      let failData = false;
      const { store } = await open({
        faults: { beforeSync: (file) => (failData && file === "blocks" ? diskError("EIO", "fdatasync", file) : undefined) },
      });
      await store.appendLog([writeRecord(1, 1, 0)]);
      await store.applyThrough(asLsn(1));
      failData = true;
      await expectCode(store.checkpoint(), "DISK_FAILED", /EIO/);
      await expectCode(store.applyThrough(asLsn(1)), "DISK_FAILED");
    });
  });
}

/**
 * DiskReplicaStore.regionDigests against a background checkpoint that ends
 * while the call waits for a region's block metadata: every digest must be
 * that of the applied point, whichever side of the checkpoint's end each
 * region was read on. (The scrub across replicas votes with these digests:
 * a stale one looks like a lost write.)
 */
import { afterEach, expect, it } from "vitest";
import { asLsn } from "../../src/core/types.js";
import { regionDigest } from "../../src/storage/crc32.js";
import { DiskReplicaStore } from "../../src/storage/disk-replica-store.js";
import { MemoryVolumeDisk } from "../../src/storage/memory-volume-disk.js";
import type { DiskFile, VolumeDisk } from "../../src/storage/volume-disk.js";
import { volumeConfig, writeRecord } from "./fixtures.js";

interface Gate {
  readonly passed: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open = (): void => undefined;
  const passed = new Promise<void>((resolve) => (open = resolve));
  return { passed, open };
}

/** A memory disk whose block data sync and next block metadata read can be held. */
function holdingDisk(): { disk: VolumeDisk; holdSync: (g: Gate | null) => void; holdNextMetaRead: (g: Gate, reached: Gate) => void } {
  const mem = new MemoryVolumeDisk();
  let sync: Gate | null = null;
  let metaRead: { gate: Gate; reached: Gate } | null = null;
  const disk = {
    list: () => mem.list(),
    unlink: (name) => mem.unlink(name),
    rename: (from, to) => mem.rename(from, to),
    syncDir: () => mem.syncDir(),
    async open(name, create, syncWrites) {
      const f = await mem.open(name, create, syncWrites);
      if (f === null) return null;
      const w = Object.create(f) as DiskFile;
      if (name === "blocks") {
        w.datasync = async () => {
          if (sync !== null) await sync.passed;
          return f.datasync();
        };
      }
      if (name === "blockmeta") {
        w.read = async (buf, pos) => {
          const held = metaRead;
          if (held !== null) {
            metaRead = null;
            held.reached.open();
            await held.gate.passed;
          }
          return f.read(buf, pos);
        };
      }
      return w;
    },
  } satisfies VolumeDisk;
  return { disk, holdSync: (g) => (sync = g), holdNextMetaRead: (g, reached) => (metaRead = { gate: g, reached }) };
}

let store: DiskReplicaStore | null = null;
afterEach(async () => {
  await store?.close();
  store = null;
});

it("gives the digests of the applied point while a background checkpoint ends between two regions", async () => {
  const { disk, holdSync, holdNextMetaRead } = holdingDisk();
  const s = await DiskReplicaStore.open(disk, "vol1", { create: volumeConfig("vol1", 64), regionBlocks: 4 }, () => Promise.resolve());
  store = s;
  // Block 0 checkpointed and region 0's metadata cached; block 1 (region 0) applied since; region 1 never read.
  await s.appendLog([writeRecord(1, 1, 0)]);
  await s.applyThrough(asLsn(1));
  await s.checkpoint();
  await s.blockChecksums(0);
  await s.appendLog([writeRecord(1, 2, 1)]);
  await s.applyThrough(asLsn(2));
  const want = [regionDigest(await s.blockChecksums(0)), regionDigest(new Uint32Array(4))];
  // A background checkpoint freezes block 1; its write waits for the data sync.
  const sync = gate();
  holdSync(sync);
  const checkpoint = s.checkpoint();
  await new Promise((resolve) => setImmediate(resolve));
  // Digests of regions 0 (cached) and 1: region 1's metadata read is held until the checkpoint has ended.
  const metaRead = gate();
  const reached = gate();
  holdNextMetaRead(metaRead, reached);
  const digests = s.regionDigests(0, 2);
  await Promise.race([reached.passed, new Promise((_, reject) => setTimeout(() => reject(new Error("region 1's metadata was not read")), 5000))]);
  holdSync(null);
  sync.open();
  // The checkpoint's write ends (its last step, in call order, waits for the digests).
  const frozen = (): unknown => (s as unknown as { frozenOverlay: unknown }).frozenOverlay;
  for (let i = 0; i < 1000 && frozen() !== null; i++) await new Promise((resolve) => setTimeout(resolve, 1));
  expect(frozen()).toBeNull();
  metaRead.open();
  expect(await digests).toEqual(want);
  await checkpoint;
  expect(regionDigest(await s.blockChecksums(0))).toBe(want[0]);
});

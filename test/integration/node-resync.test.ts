/**
 * Region resync between real volnodes (rule 7): a replica that was down
 * while more was written than the primary's log retains comes back, is
 * copied the regions that changed (writes during the resync go on, and the
 * regions they touch get their versions back when it ends), and then serves
 * as primary with every acknowledged byte.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits } from "../../src/core/limits.js";
import { resyncedFollower, sameHistorySums, startCluster, waitFor, type TestCluster } from "./harness.js";
import { RawVolumeClient } from "./raw-volume.js";

const BLOCK = 4096;
const REGION_BYTES = limits.regionBlocks * BLOCK;
const REGIONS = 24;
/** Past the primary's hard cap on retained log bytes (twice the retained bytes), so the log no longer covers the gap. */
const WRITES = Math.ceil((2 * limits.logRetainedBytesMax) / REGION_BYTES) + 16;
const QD = 8;


describe("volnode region resync", () => {
  let c: TestCluster;
  const clients: RawVolumeClient[] = [];

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("resync", REGIONS * limits.regionBlocks);
  }, 30_000);

  afterAll(async () => {
    for (const v of clients) v.close();
    await c?.stop();
  }, 30_000);

  it("copies the changed regions to a replica the log no longer covers; it then serves every acknowledged byte", async () => {
    const v = new RawVolumeClient(c.node("n1").address);
    clients.push(v);
    const m = await v.mount("resync", "writer");
    const io = v.openIo("resync", "writer", m.epoch);
    await c.kill("n3", "SIGKILL");
    const model = Buffer.alloc(REGIONS * REGION_BYTES);
    let next = 0;
    const writeOne = async (): Promise<void> => {
      while (next < WRITES) {
        const i = next++;
        // Whole regions, leaving region 0 and the last one untouched (they must compare equal and not be copied).
        const region = 1 + (i % (REGIONS - 2));
        const data = randomBytes(REGION_BYTES);
        const r = await io.write(region * REGION_BYTES, data);
        expect(r, r.message).toMatchObject({ ok: true });
        data.copy(model, region * REGION_BYTES);
      }
    };
    await Promise.all(Array.from({ length: QD }, () => writeOne()));

    // Paced, so that the resync is still under way while region 0 and the last are written below.
    await c.adminCall("n1", "SetResyncRate", { bytesPerSec: 4 * REGION_BYTES });
    await c.restart("n3");
    await waitFor(
      "n3 resyncing",
      async () => {
        const s = await c.adminCall<{ followers: { node: string; resyncing: boolean; regionsCopied: number }[] }>("n1", "ReplicaStatus", { volume: "resync" });
        const f = s.followers.find((x) => x.node === "n3");
        return f !== undefined && f.resyncing && f.regionsCopied > 0 ? f : null;
      },
      20_000,
    );
    // Regions the resync does not copy (their versions matched), written while n3 applies records
    // as a resyncing replica: it cannot name their versions then, but it can once it is consistent.
    for (const region of [0, REGIONS - 1, 0]) {
      const data = randomBytes(BLOCK);
      const r = await io.write(region * REGION_BYTES + BLOCK, data);
      expect(r, r.message).toMatchObject({ ok: true });
      data.copy(model, region * REGION_BYTES + BLOCK);
    }
    const during = await c.adminCall<{ followers: { node: string; resyncing: boolean }[] }>("n1", "ReplicaStatus", { volume: "resync" });
    expect(during.followers.find((x) => x.node === "n3")?.resyncing, "the writes came while n3 was resyncing").toBe(true);
    // n3 applied them as a resyncing replica: those regions are dirty there until the resync ends.
    await waitFor(
      "n3 applied the writes while resyncing",
      async () => {
        const s = await c.adminCall<{ consistent: boolean; regionsDirty: number }>("n3", "ReplicaStatus", { volume: "resync" });
        return !s.consistent && s.regionsDirty > 0 ? s : null;
      },
      5_000,
    );
    await c.adminCall("n1", "SetResyncRate", { bytesPerSec: 0 });
    const synced = await resyncedFollower(c, "n1", "n3", "resync", 40_000);
    expect(synced.consistent).toBe(true);
    const traced = c.node("n1").lines.some((l) => l.includes('"msg":"region resync copies"'));
    expect(traced, "the primary went through a region resync, not a log catch-up").toBe(true);
    // Only what changed moved: the regions written while n3 was away (each
    // many times over), never the two left alone; counted, shown and logged.
    const changedBytes = (REGIONS - 2) * REGION_BYTES;
    expect(synced.lastResyncBytes).toBeGreaterThan(0);
    expect(synced.lastResyncBytes).toBeLessThanOrEqual(1.2 * changedBytes);
    expect(synced.lastResyncRegions).toBeLessThanOrEqual(REGIONS - 2);
    const done = c.node("n1").lines.map((l) => JSON.parse(l) as { msg?: string; bytes?: number }).find((l) => l.msg === "follower resynced");
    expect(done?.bytes).toBe(synced.lastResyncBytes);
    io.end();
    await v.unmount("resync", "writer");

    // P4: the replicas' blocks are the same, compared through their own checksums (region digests of the stored block CRCs).
    const sums = await sameHistorySums(c, ["n1", "n2", "n3"], "resync");
    expect(sums[0]?.digests).toHaveLength(REGIONS);
    for (const other of sums.slice(1)) expect(other.digests).toEqual(sums[0]?.digests);
    // Every region's version is known again on n3 (the ones written during its resync too), so
    // scrub can compare them across replicas.
    const n3 = await c.adminCall<{ consistent: boolean; regionsDirty: number }>("n3", "ReplicaStatus", { volume: "resync" });
    expect(n3).toMatchObject({ consistent: true, regionsDirty: 0 });

    // n3 serves as primary: its reads come from its own blocks.
    await c.kill("n1", "SIGKILL");
    const v3 = new RawVolumeClient(c.node("n3").address);
    clients.push(v3);
    const m3 = await waitFor("mount through n3", () => v3.mount("resync", "reader"), 20_000);
    const io3 = v3.openIo("resync", "reader", m3.epoch);
    for (let region = 0; region < REGIONS; region++) {
      const r = await io3.read(region * REGION_BYTES, REGION_BYTES);
      expect(r, r.message).toMatchObject({ ok: true });
      expect(Buffer.from(r.data ?? []).equals(model.subarray(region * REGION_BYTES, (region + 1) * REGION_BYTES)), `region ${region}`).toBe(true);
    }
    io3.end();
  }, 90_000);
});

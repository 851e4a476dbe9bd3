/**
 * Scrub across replicas with real volnodes (#5, "a lost write shows when
 * replicas compare"): a follower's disk acknowledged writes and lost them
 * (its block data, block checksums and region versions all go back to an
 * earlier state, every checksum still verifying). Its blocks pass every
 * read check; only comparing region versions with the primary's shows the
 * loss. volctl scrub (Admin.Scrub on the primary) finds the regions, repairs
 * them from the primary's copy, and counts them. When the loss keeps the
 * region versions (only blocks and checksums go back), the versions agree
 * and the replicas' content digests show it.
 */
import { randomBytes } from "node:crypto";
import { copyFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Cluster } from "../../src/client/index.js";
import { limits } from "../../src/core/limits.js";
import { sameHistorySums, startCluster, waitFor, type RegionSums, type TestCluster } from "./harness.js";

const BLOCK = 4096;
const REGION_BYTES = limits.regionBlocks * BLOCK;
const REGIONS = 12;
/** The files that hold blocks, their checksums and region versions (src/storage/disk-replica-store.ts). */
const DATA_FILES = ["blocks", "blockmeta", "regions"];


describe("a lost write on a follower's disk", () => {
  let c: TestCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("lost", REGIONS * limits.regionBlocks);
    cluster = await connect({ cluster: c.clusterFile });
  }, 40_000);

  afterAll(async () => {
    await cluster?.close();
    await c?.stop();
  }, 40_000);

  function sums(nodes: readonly string[]): Promise<RegionSums[]> {
    return sameHistorySums(c, nodes, "lost");
  }

  it("is found by scrub comparing region versions, repaired from the primary's copy, and counted", async () => {
    const vol = await cluster.mount("lost", { mode: "rw" });
    const primary = vol.primary;
    const follower = ["n1", "n2", "n3"].find((n) => n !== primary) ?? "n3";
    const model = Buffer.alloc(REGIONS * REGION_BYTES);
    const write = async (region: number): Promise<void> => {
      const data = randomBytes(REGION_BYTES);
      await vol.write(region * REGION_BYTES, data);
      data.copy(model, region * REGION_BYTES);
    };
    for (let g = 0; g < 4; g++) await write(g);
    await sums(["n1", "n2", "n3"]);
    // A clean stop checkpoints the follower's blocks; keep its data files as they are now.
    const dir = path.join(c.node(follower).dataDir, "volumes", "lost");
    await c.kill(follower, "SIGTERM");
    for (const f of DATA_FILES) await copyFile(path.join(dir, f), path.join(c.dir, `${follower}-${f}.old`));
    await c.restart(follower);
    // More writes, which the follower applies and checkpoints...
    for (const g of [1, 5, 6]) await write(g);
    await sums(["n1", "n2", "n3"]);
    await c.kill(follower, "SIGTERM");
    // ...and its disk loses them: data, checksums and versions as they were before (its log and superblock say it has them).
    for (const f of DATA_FILES) await copyFile(path.join(c.dir, `${follower}-${f}.old`), path.join(dir, f));
    await c.restart(follower);
    const before = await sums(["n1", "n2", "n3"]).catch(() => null);
    const differ = before === null ? true : before.some((s) => JSON.stringify(s.digests) !== JSON.stringify(before[0]?.digests));
    expect(differ, "the follower's blocks differ from the others' (each still passing its checksum)").toBe(true);
    // Block by block (Admin.BlockChecksums, what bench:faults counts divergent blocks with): region 0,
    // written before the follower's files were kept, is the same everywhere; region 5, written only
    // after, differs; a region past the end is refused.
    type Blocks = { appliedLsn: number; stable: boolean; firstBlock: number; checksums: number[] };
    const blockSums = (node: string, region: number): Promise<Blocks> => c.adminCall<Blocks>(node, "BlockChecksums", { volume: "lost", region });
    const [p0, f0, p5, f5] = await Promise.all([blockSums(primary, 0), blockSums(follower, 0), blockSums(primary, 5), blockSums(follower, 5)]);
    expect(p5.firstBlock).toBe(5 * limits.regionBlocks);
    expect(p5.checksums).toHaveLength(limits.regionBlocks);
    expect(p0.checksums.every((x) => x !== 0)).toBe(true);
    expect(f0.checksums).toEqual(p0.checksums);
    expect(f5.checksums.some((x, i) => x !== p5.checksums[i])).toBe(true);
    await expect(blockSums(primary, REGIONS)).rejects.toThrow(/past the end/);

    // volctl scrub: every replica's checksums, and the region versions across them.
    await cluster.scrub("lost");
    const after = await waitFor(
      "the lost regions repaired",
      async () => {
        const all = await sums(["n1", "n2", "n3"]);
        return all.every((s) => JSON.stringify(s.digests) === JSON.stringify(all[0]?.digests)) ? all : null;
      },
      30_000,
    );
    expect(after).toHaveLength(3);
    const info = await cluster.volumeInfo("lost");
    const p = info.replicas.find((r) => r.node === primary);
    expect(p?.divergentFound).toBeGreaterThanOrEqual(3);
    expect(c.node(follower).lines.some((l) => l.includes('"msg":"region versions disagree with the primary\'s"'))).toBe(true);
    await vol.close();

    // The follower now serves every byte as primary.
    const others = ["n1", "n2", "n3"].filter((n) => n !== follower);
    for (const n of others) await c.kill(n, "SIGKILL");
    await c.restart(others[0] ?? "n1");
    const v2 = await cluster.mount("lost", { mode: "rw" });
    for (let g = 0; g < REGIONS; g++) {
      const got = await v2.read(g * REGION_BYTES, REGION_BYTES);
      expect(Buffer.from(got).equals(model.subarray(g * REGION_BYTES, (g + 1) * REGION_BYTES)), `region ${g}`).toBe(true);
    }
    await v2.close();
    // (Every node up again for the next case.)
    for (const n of others.slice(1)) await c.restart(n);
  }, 120_000);

  it("is found by scrub comparing content digests when region versions stay equal, and repaired from the majority's copy", async () => {
    const name = "masked";
    await c.createVolume(name, REGIONS * limits.regionBlocks);
    const vol = await cluster.mount(name, { mode: "rw" });
    const primary = vol.primary;
    const follower = ["n1", "n2", "n3"].find((n) => n !== primary) ?? "n3";
    const model = Buffer.alloc(REGIONS * REGION_BYTES);
    const write = async (offset: number, length: number): Promise<void> => {
      const data = randomBytes(length);
      await vol.write(offset, data);
      data.copy(model, offset);
    };
    for (let g = 0; g < 4; g++) await write(g * REGION_BYTES, REGION_BYTES);
    const all = (): Promise<RegionSums[]> => sameHistorySums(c, ["n1", "n2", "n3"], name);
    await all();
    const dir = path.join(c.node(follower).dataDir, "volumes", name);
    await c.kill(follower, "SIGTERM");
    // Blocks and their checksums as they are now; the region versions are not kept.
    for (const f of ["blocks", "blockmeta"]) await copyFile(path.join(dir, f), path.join(c.dir, `${follower}-${name}-${f}.old`));
    await c.restart(follower);
    // Rewrites inside regions 1 and 2 (their versions move on), applied and checkpointed by the follower...
    await write(REGION_BYTES + 5 * BLOCK, 3 * BLOCK);
    await write(2 * REGION_BYTES + 100 * BLOCK, BLOCK);
    await all();
    await c.kill(follower, "SIGTERM");
    // ...and its disk loses those block writes but not the versions: every region version still equals the primary's.
    for (const f of ["blocks", "blockmeta"]) await copyFile(path.join(c.dir, `${follower}-${name}-${f}.old`), path.join(dir, f));
    await c.restart(follower);
    const before = await all();
    expect(before.some((s) => JSON.stringify(s.digests) !== JSON.stringify(before[0]?.digests)), "the follower's blocks differ from the others'").toBe(true);

    await cluster.scrub(name);
    await waitFor(
      "the lost block writes repaired",
      async () => {
        const now = await all();
        return now.every((s) => JSON.stringify(s.digests) === JSON.stringify(now[0]?.digests)) ? now : null;
      },
      30_000,
    );
    const info = await cluster.volumeInfo(name);
    expect(info.replicas.find((r) => r.node === primary)?.divergentFound).toBeGreaterThanOrEqual(2);
    // Found by content: the versions agreed.
    expect(c.node(follower).lines.some((l) => l.includes(`"volume":"${name}"`) && l.includes('"msg":"region content differs from the primary\'s at the same version"'))).toBe(true);
    expect(c.node(follower).lines.some((l) => l.includes(`"volume":"${name}"`) && l.includes('"msg":"region versions disagree with the primary\'s"'))).toBe(false);
    await vol.close();

    // The follower serves every byte as primary.
    const others = ["n1", "n2", "n3"].filter((n) => n !== follower);
    for (const n of others) await c.kill(n, "SIGKILL");
    await c.restart(others[0] ?? "n1");
    const v2 = await cluster.mount(name, { mode: "rw" });
    const got = await v2.read(0, 4 * REGION_BYTES);
    expect(Buffer.from(got).equals(model.subarray(0, 4 * REGION_BYTES))).toBe(true);
    await v2.close();
  }, 120_000);
});

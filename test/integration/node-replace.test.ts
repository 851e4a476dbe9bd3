/**
 * volctl replace on real volnodes (rule 7, #5): under a write load, a
 * replica is replaced by an empty one on a fourth node, which is built by
 * region resync as a learner, then joins through the joint configuration;
 * the old replica is deleted. Every acknowledged write reads back, and the
 * new set's blocks compare equal through the nodes' own checksums.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Cluster, type ReplaceProgress, type Volume } from "../../src/client/index.js";
import { limits } from "../../src/core/limits.js";
import { sameHistorySums, startCluster, waitFor, type TestCluster } from "./harness.js";

const BLOCK = 4096;
const BLOCKS = 16 * limits.regionBlocks;
const QD = 4;


describe("volctl replace", () => {
  let c: TestCluster;
  const clusters: Cluster[] = [];

  beforeAll(async () => {
    c = await startCluster({ nodes: 4 });
  }, 30_000);

  afterAll(async () => {
    await Promise.allSettled(clusters.map((x) => x.close()));
    await c?.stop();
  }, 30_000);

  /** Writes random blocks at queue depth QD until `stop`; returns each block's last acknowledged bytes. */
  async function writeUntil(vol: Volume, stop: () => boolean, progress: { acked: number }): Promise<{ model: Map<number, Buffer>; acked: number }> {
    const model = new Map<number, Buffer>();
    const inFlight = new Map<number, number>();
    let acked = 0;
    let seq = 0;
    const worker = async (): Promise<void> => {
      while (!stop()) {
        let block = Math.floor(Math.random() * BLOCKS);
        // One write per block at a time: the last acknowledged one is the block's value.
        while (inFlight.has(block)) block = (block + 1) % BLOCKS;
        const mine = ++seq;
        inFlight.set(block, mine);
        const data = randomBytes(BLOCK);
        await vol.write(block * BLOCK, data);
        inFlight.delete(block);
        model.set(block, data);
        acked++;
        progress.acked = acked;
      }
    };
    await Promise.all(Array.from({ length: QD }, () => worker()));
    return { model, acked };
  }

  async function replaceUnderLoad(name: string, from: (primary: string) => string, to: string): Promise<void> {
    const app = await connect({ cluster: c.clusterFile });
    const ops = await connect({ cluster: c.clusterFile });
    clusters.push(app, ops);
    const vol = await app.mount(name, { mode: "rw" });
    let stop = false;
    const progress = { acked: 0 };
    const load = writeUntil(vol, () => stop, progress);
    await waitFor("writes flowing", () => Promise.resolve(progress.acked >= 50 ? true : null), 20_000);
    const primary = (await ops.volumeInfo(name)).primary ?? "";
    const victim = from(primary);
    const phases: ReplaceProgress["phase"][] = [];
    let info;
    try {
      info = await ops.replaceReplica(name, victim, to, {
        timeoutMs: 60_000,
        onProgress: (p) => {
          if (phases[phases.length - 1] !== p.phase) phases.push(p.phase);
        },
      });
      // Keep writing through the new set.
      const before = progress.acked;
      await waitFor("writes flowing through the new set", () => Promise.resolve(progress.acked >= before + 50 ? true : null), 20_000);
    } finally {
      stop = true;
    }
    const { model, acked } = await load;
    expect(acked).toBeGreaterThanOrEqual(100);
    expect(phases).toContain("done");
    expect([...info.config.replicas].sort()).toEqual(["n1", "n2", "n3", "n4"].filter((n) => n !== victim).sort());
    expect(info.config.previousReplicas).toEqual([]);
    expect(info.config.learner).toBeNull();

    // The old replica is gone from its node; the new set holds every acknowledged write.
    const left = await c.adminCall<{ replicas: { volume: string }[] }>(victim, "ListReplicas", {});
    expect(left.replicas.map((r) => r.volume)).not.toContain(name);
    for (const [block, data] of model) {
      const got = await vol.read(block * BLOCK, BLOCK);
      expect(Buffer.from(got).equals(data), `block ${block}`).toBe(true);
    }
    await vol.close();

    // The new set is in sync, block for block (P4), through the nodes' own checksums.
    const set = [...info.config.replicas];
    const sums = await sameHistorySums(c, set, name);
    for (const other of sums.slice(1)) expect(other.digests).toEqual(sums[0]?.digests);
    const after = await ops.volumeInfo(name);
    expect(after.replicas.map((r) => r.node).sort()).toEqual(set.sort());
    expect(after.health).toBe("healthy");
  }

  it("replaces a follower under write load: the new replica in sync, the old one gone, nothing lost", async () => {
    await c.createVolume("rep1", BLOCKS, ["n1", "n2", "n3"]);
    await replaceUnderLoad("rep1", (primary) => ["n1", "n2", "n3"].find((n) => n !== primary) ?? "n1", "n4");
  }, 120_000);

  it("replaces the primary's own replica under write load: the client fails over to the new set without an error", async () => {
    await c.createVolume("rep2", BLOCKS, ["n1", "n2", "n3"]);
    await replaceUnderLoad("rep2", (primary) => primary, "n4");
  }, 120_000);
});

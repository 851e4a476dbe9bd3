/**
 * Rule 9 and P5 with real volnodes: a block whose copy on the primary's
 * disk fails its checksum is never returned; the read is served from an
 * in-sync replica's copy, and the bad copy is rewritten (a repair record,
 * replicated like any write). With no good copy left, the read fails with
 * CorruptError, and still no bad byte is returned.
 */
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, CorruptError, type Cluster } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;

async function flipByte(c: TestCluster, node: string, volume: string, block: number): Promise<void> {
  const f = await open(path.join(c.node(node).dataDir, "volumes", volume, "blocks"), "r+");
  try {
    const b = Buffer.alloc(1);
    await f.read(b, 0, 1, block * BLOCK + 100);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await f.write(b, 0, 1, block * BLOCK + 100);
  } finally {
    await f.close();
  }
}

/** Waits until `nodes` applied every write `primary` committed: a clean stop then puts them in the data file. */
async function waitApplied(c: TestCluster, primary: string, nodes: readonly string[]): Promise<void> {
  const { commitLsn } = await c.adminCall<{ commitLsn: number }>(primary, "ReplicaStatus", { volume: "rep" });
  for (const node of nodes) {
    const until = Date.now() + 10_000;
    for (;;) {
      const s = await c.adminCall<{ appliedLsn: number }>(node, "ReplicaStatus", { volume: "rep" });
      if (s.appliedLsn >= commitLsn) break;
      if (Date.now() >= until) throw new Error(`${node} did not apply through ${commitLsn} in 10 s (applied ${s.appliedLsn})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("repair of corrupt blocks", () => {
  let c: TestCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("rep", 1024);
    cluster = await connect({ cluster: c.clusterFile });
  }, 40_000);

  afterAll(async () => {
    await cluster?.close();
    await c?.stop();
  }, 40_000);

  it("serves a corrupt block of the primary from a replica's copy and rewrites it", async () => {
    const data = randomBytes(16 * BLOCK);
    let vol = await cluster.mount("rep", { mode: "rw" });
    await vol.write(0, data);
    const primary = vol.primary;
    await vol.close();
    // A clean stop checkpoints the blocks into the data file; then a bit flips there.
    await c.kill(primary, "SIGTERM");
    await flipByte(c, primary, "rep", 5);
    await c.restart(primary);

    vol = await cluster.mount("rep", { mode: "rw" });
    expect(vol.primary).toBe(primary);
    expect(Buffer.from(await vol.read(0, data.length)).equals(data)).toBe(true);
    const lines = c.node(primary).lines;
    expect(lines.some((l) => l.includes('"msg":"corrupt blocks found"'))).toBe(true);
    expect(lines.some((l) => l.includes('"msg":"corrupt block repaired"'))).toBe(true);
    // Read again, and from the data file once checkpointed: the copy is good now.
    expect(Buffer.from(await vol.read(5 * BLOCK, BLOCK)).equals(data.subarray(5 * BLOCK, 6 * BLOCK))).toBe(true);
    await vol.close();
    await c.kill(primary, "SIGTERM");
    await c.restart(primary);
    vol = await cluster.mount("rep", { mode: "rw" });
    expect(vol.primary).toBe(primary);
    const found = c.node(primary).lines.filter((l) => l.includes('"msg":"corrupt blocks found"')).length;
    expect(Buffer.from(await vol.read(0, data.length)).equals(data)).toBe(true);
    expect(c.node(primary).lines.filter((l) => l.includes('"msg":"corrupt blocks found"')).length).toBe(found);
    await vol.close();
  }, 90_000);

  it("fails the read with CorruptError when no replica has a good copy, and returns no bad byte", async () => {
    const data = randomBytes(4 * BLOCK);
    let vol = await cluster.mount("rep", { mode: "rw" });
    await vol.write(100 * BLOCK, data);
    const primary = vol.primary;
    await vol.close();
    await waitApplied(c, primary, c.nodes.map((n) => n.id));
    for (const n of c.nodes) {
      await c.kill(n.id, "SIGTERM");
      await flipByte(c, n.id, "rep", 101);
    }
    for (const n of c.nodes) await c.restart(n.id);
    vol = await cluster.mount("rep", { mode: "rw" });
    expect(vol.primary).toBe(primary);
    await expect(vol.read(100 * BLOCK, 4 * BLOCK)).rejects.toBeInstanceOf(CorruptError);
    // The other blocks read fine; a write over the bad one makes it whole again.
    expect(Buffer.from(await vol.read(100 * BLOCK, BLOCK)).equals(data.subarray(0, BLOCK))).toBe(true);
    const fresh = randomBytes(BLOCK);
    await vol.write(101 * BLOCK, fresh);
    expect(Buffer.from(await vol.read(101 * BLOCK, BLOCK)).equals(fresh)).toBe(true);
    await vol.close();
  }, 90_000);

  it("finds a corrupt copy on a follower by scrub and rewrites it from the primary's", async () => {
    const data = randomBytes(8 * BLOCK);
    let vol = await cluster.mount("rep", { mode: "rw" });
    await vol.write(200 * BLOCK, data);
    const primary = vol.primary;
    await vol.close();
    const follower = c.nodes.map((n) => n.id).find((id) => id !== primary) ?? "";
    await waitApplied(c, primary, [follower]);
    await c.kill(follower, "SIGTERM");
    await flipByte(c, follower, "rep", 203);
    await c.restart(follower);
    // A live mount: its primary repairs what the follower reports.
    vol = await cluster.mount("rep", { mode: "rw" });
    expect(vol.primary).toBe(primary);
    const started = await cluster.scrub("rep");
    expect(started.sort()).toEqual(c.nodes.map((n) => n.id).sort());
    const until = Date.now() + 30_000;
    let info = await cluster.volumeInfo("rep");
    const repaired = (): boolean => {
      const f = info.replicas.find((r) => r.node === follower);
      const p = info.replicas.find((r) => r.node === primary);
      return info.replicas.every((r) => r.scrub?.active === false) && (f?.corruptFound ?? 0) >= 1 && (p?.repairsDone ?? 0) >= 1;
    };
    while (!repaired() && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      info = await cluster.volumeInfo("rep");
    }
    const trail = c.nodes.flatMap((n) => n.lines.filter((l) => /corrupt|repair|scrub/.test(l)).map((l) => `${n.id} ${l}`));
    expect(repaired(), `${JSON.stringify(info.replicas)}\n${trail.slice(-40).join("\n")}`).toBe(true);
    expect(Buffer.from(await vol.read(200 * BLOCK, data.length)).equals(data)).toBe(true);
    await vol.close();
    // The follower's data file holds the good bytes again (checkpointed at its clean stop), once it applied the repair record.
    await waitApplied(c, primary, [follower]);
    await c.kill(follower, "SIGTERM");
    const f = await open(path.join(c.node(follower).dataDir, "volumes", "rep", "blocks"), "r");
    try {
      const b = Buffer.alloc(BLOCK);
      await f.read(b, 0, BLOCK, 203 * BLOCK);
      expect(b.equals(data.subarray(3 * BLOCK, 4 * BLOCK))).toBe(true);
    } finally {
      await f.close();
    }
    await c.restart(follower);
  }, 90_000);
});

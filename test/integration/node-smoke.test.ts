/** volnode serves Admin and Volume: create a volume on 3 nodes, mount, write, read back. */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./harness.js";
import { RawVolumeClient } from "./raw-volume.js";

describe("volnode smoke", () => {
  let c: TestCluster;
  const clients: RawVolumeClient[] = [];

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
  }, 30_000);

  afterAll(async () => {
    for (const v of clients) v.close();
    await c?.stop();
  }, 30_000);

  it("creates a replicated volume, mounts it and round-trips a write", async () => {
    await c.createVolume("smoke", 512);
    // Creating it again with the same configuration is a no-op.
    await c.createVolume("smoke", 512);
    const list = await c.adminCall<{ replicas: { volume: string; config: { blockCount: number } }[] }>("n2", "ListReplicas", {});
    expect(list.replicas.map((r) => [r.volume, r.config.blockCount])).toEqual([["smoke", 512]]);
    const status = await c.adminCall<{ node: string; volumes: number; rssBytes: number }>("n3", "NodeStatus", {});
    expect(status.node).toBe("n3");
    expect(status.volumes).toBe(1);
    expect(status.rssBytes).toBeGreaterThan(0);

    const v = new RawVolumeClient(c.node("n1").address);
    clients.push(v);
    const m = await v.mount("smoke", "smoke-client");
    expect(m.epoch).toBeGreaterThan(0);
    expect(m.blockCount).toBe(512);
    expect(m.primary).toBe("n1");
    const io = v.openIo("smoke", "smoke-client", m.epoch);
    const data = randomBytes(3 * 4096);
    const w = await io.write(8192, data);
    expect(w).toMatchObject({ ok: true });
    const r = await io.read(8192, data.length);
    expect(r.ok).toBe(true);
    expect(Buffer.from(r.data ?? []).equals(data)).toBe(true);
    const st = await c.adminCall<{ primaryPhase: string; commitLsn: number; followers: unknown[] }>("n1", "ReplicaStatus", { volume: "smoke" });
    expect(st.primaryPhase).toBe("active");
    expect(st.followers).toHaveLength(2);
    io.end();
  });

  it("deletes a replica, after which the node no longer knows the volume", async () => {
    await c.createVolume("gone", 64, ["n1", "n2", "n3"]);
    await Promise.all(["n1", "n2", "n3"].map((n) => c.adminCall(n, "DeleteReplica", { volume: "gone" })));
    const list = await c.adminCall<{ replicas: { volume: string }[] }>("n1", "ListReplicas", {});
    expect(list.replicas.map((r) => r.volume)).toEqual(["smoke"]);
    await expect(c.adminCall("n1", "ReplicaStatus", { volume: "gone" })).rejects.toMatchObject({ code: 5 });
    // The name is free again.
    await c.createVolume("gone", 32);
  });

  it("refuses replicas it cannot hold: a bad name, a node outside the cluster, none on this node", async () => {
    const create = (config: object) => c.adminCall("n1", "CreateReplica", { config });
    await expect(create({ name: "Bad Name", blockCount: 8, replicas: ["n1"], configVersion: 1 })).rejects.toMatchObject({ code: 3 });
    await expect(create({ name: "ok", blockCount: 8, replicas: ["n1", "n9"], configVersion: 1 })).rejects.toMatchObject({ code: 3 });
    await expect(create({ name: "ok", blockCount: 8, replicas: ["n2", "n3"], configVersion: 1 })).rejects.toMatchObject({ code: 3 });
    await expect(create({ name: "ok", blockCount: 0, replicas: ["n1"], configVersion: 1 })).rejects.toMatchObject({ code: 3 });
  });

  it("refuses a different configuration for an existing volume", async () => {
    await expect(c.createVolume("smoke", 1024)).rejects.toMatchObject({ details: expect.stringMatching(/another configuration/) as unknown });
  });
});

/** volctl as a child process against real volnodes: a volume's life, with --json output. */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../src/client/index.js";
import { DEFAULT_RESYNC_BYTES_PER_SEC } from "../../src/rpc/cluster-config.js";
import { json, volctl } from "./volctl-process.js";
import { startCluster, type TestCluster } from "../integration/harness.js";

describe("volctl volume lifecycle", () => {
  let c: TestCluster;
  let cl: string[];

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    cl = ["--cluster", c.clusterFile];
  }, 40_000);

  afterAll(async () => {
    await c?.stop();
  }, 40_000);

  it("creates, lists, describes, writes, reads, fences and removes a volume", async () => {
    const created = await volctl([...cl, "--json", "create", "cli1", "--size", "4MiB", "--replicas", "3"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(json(created)).toMatchObject({ name: "cli1", sizeBytes: 4 * 1024 * 1024, replicaNodes: expect.arrayContaining(["n1", "n2", "n3"]) as unknown });

    const again = await volctl([...cl, "create", "cli1", "--size", "4MiB"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);

    const ls = await volctl([...cl, "--json", "ls"]);
    expect(ls.code).toBe(0);
    expect(json(ls)).toEqual([expect.objectContaining({ name: "cli1", health: "healthy" })]);

    const status = await volctl([...cl, "--json", "status"]);
    expect(status.code).toBe(0);
    const st = json(status) as { nodes: { id: string; up: boolean }[]; volumes: { name: string; health: string }[] };
    expect(st.nodes.map((n) => [n.id, n.up])).toEqual([["n1", true], ["n2", true], ["n3", true]]);
    expect(st.volumes).toEqual([expect.objectContaining({ name: "cli1", health: "healthy" })]);

    const file = path.join(c.dir, "payload.bin");
    const payload = randomBytes(10_000);
    await writeFile(file, payload);
    const wrote = await volctl([...cl, "--json", "write", "cli1", "--offset", "5000", file]);
    expect(wrote.code).toBe(0);
    expect(json(wrote)).toMatchObject({ volume: "cli1", offset: 5000, bytes: 10_000 });

    const raw = await volctl([...cl, "read", "cli1", "--offset", "5000", "--length", "10000"]);
    expect(raw.code).toBe(0);
    expect(raw.stdout.equals(payload)).toBe(true);

    const fromStdin = await volctl(["write", "cli1", "--offset", "1KiB", "-"], { env: { REPLIVOL_CLUSTER: c.clusterFile }, input: Buffer.from("hello") });
    expect(fromStdin.code).toBe(0);
    const readJson = await volctl([...cl, "--json", "read", "cli1", "--offset", "1024", "--length", "5"]);
    expect(Buffer.from((json(readJson) as { data: string }).data, "base64").toString()).toBe("hello");

    const info = await volctl([...cl, "--json", "info", "cli1"]);
    expect(info.code).toBe(0);
    const v = json(info) as { epoch: number; replicas: { node: string; state: string; head: { lsn: number } }[] };
    expect(v.replicas.map((r) => r.node).sort()).toEqual(["n1", "n2", "n3"]);
    expect(v.replicas.every((r) => r.head.lsn > 0)).toBe(true);

    const fenced = await volctl([...cl, "--json", "fence", "cli1"]);
    expect(fenced.code).toBe(0);
    expect((json(fenced) as { epoch: number }).epoch).toBeGreaterThan(v.epoch);

    const refused = await volctl([...cl, "rm", "cli1"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--yes/);
    const removed = await volctl([...cl, "--json", "rm", "cli1", "--yes"]);
    expect(removed.code).toBe(0);
    const gone = await volctl([...cl, "--json", "info", "cli1"]);
    expect(gone.code).toBe(3);
    expect(JSON.parse(gone.stderr)).toMatchObject({ error: { code: "NOT_FOUND", exitCode: 3 } });
  }, 60_000);

  it("sets the nodes' resync rate at run time, and shows it", async () => {
    const set = await volctl([...cl, "--json", "resync-rate", "10MiB", "--nodes", "n1,n2"]);
    expect(set.code).toBe(0);
    expect(json(set)).toEqual([
      { node: "n1", bytesPerSec: 10 * 1024 * 1024 },
      { node: "n2", bytesPerSec: 10 * 1024 * 1024 },
    ]);
    const nodes = json(await volctl([...cl, "--json", "nodes"])) as { id: string; resyncBytesPerSec: number | null }[];
    // n3 keeps the default rate (the cluster file names none).
    expect(nodes.map((n) => [n.id, n.resyncBytesPerSec])).toEqual([["n1", 10 * 1024 * 1024], ["n2", 10 * 1024 * 1024], ["n3", DEFAULT_RESYNC_BYTES_PER_SEC]]);
    expect((await volctl([...cl, "resync-rate", "unlimited"])).code).toBe(0);
    const after = json(await volctl([...cl, "--json", "nodes"])) as { resyncBytesPerSec: number | null }[];
    expect(after.every((n) => n.resyncBytesPerSec === null)).toBe(true);
    expect((await volctl([...cl, "resync-rate", "0"])).code).toBe(2);
    expect((await volctl([...cl, "resync-rate", "fast"])).code).toBe(2);
    expect((await volctl([...cl, "resync-rate", "1MiB", "--nodes", "n9"])).code).toBe(3);
  }, 60_000);

  it("watches a returning replica until it is back in sync", async () => {
    expect((await volctl([...cl, "create", "cli2", "--size", "8MiB"])).code).toBe(0);
    // A live mount drives the catch-up (its primary does).
    const cluster = await connect({ cluster: c.clusterFile });
    try {
      const vol = await cluster.mount("cli2", { mode: "rw" });
      await c.kill("n3", "SIGKILL");
      for (let i = 0; i < 16; i++) await vol.write(i * 256 * 1024, randomBytes(256 * 1024));
      await c.restart("n3");
      const watched = await volctl([...cl, "--json", "resync", "cli2", "--watch", "--timeout", "25"]);
      expect(watched.code, watched.stderr).toBe(0);
      const states = json(watched) as { node: string; state: string }[];
      expect(states.map((r) => [r.node, r.state]).sort()).toEqual([["n1", "in-sync"], ["n2", "in-sync"], ["n3", "in-sync"]]);
      const once = await volctl([...cl, "resync", "cli2"]);
      expect(once.code).toBe(0);
      expect(once.stdout.toString()).toMatch(/every replica is in sync/);
      const scrubbed = await volctl([...cl, "--json", "scrub", "cli2", "--watch", "--timeout", "25"]);
      expect(scrubbed.code, scrubbed.stderr).toBe(0);
      const sc = json(scrubbed) as { started: string[]; replicas: { node: string; scrubbing: boolean; corruptFound: number }[] };
      expect(sc.started.sort()).toEqual(["n1", "n2", "n3"]);
      expect(sc.replicas.every((r) => !r.scrubbing && r.corruptFound === 0)).toBe(true);
      await vol.close();
    } finally {
      await cluster.close();
    }
  }, 90_000);
});

/** volnode's own input checks: bad flags, cluster files and data directories exit 2 with one clear message; a locked data directory is refused at once. */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startCluster, volnodeCommand } from "./harness.js";

const RUN_TIMEOUT_MS = 20_000;

/** Runs volnode to its exit (SIGKILL after a timeout). */
function runVolnode(args: readonly string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const cmd = volnodeCommand(args);
  const child = spawn(cmd.command, cmd.args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    });
  });
}

describe("volnode input checks", () => {
  let dir: string;
  let clusterFile: string;
  let data: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "replivol-cli-"));
    data = path.join(dir, "data");
    await mkdir(data);
    clusterFile = path.join(dir, "cluster.yaml");
    await writeFile(clusterFile, `nodes:\n  - id: n1\n    address: 127.0.0.1:${await freePort()}\n`);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("exits 2 naming the problem in a corrupt cluster file", async () => {
    const bad = path.join(dir, "bad.yaml");
    await writeFile(bad, "nodes:\n  - id: n1\n    address: [not: valid\n");
    const r = await runVolnode(["--id", "n1", "--data", data, "--cluster", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^volnode: Cluster file .*bad\.yaml is not valid YAML/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);

    await writeFile(bad, "nodes:\n  - id: N1!\n    address: nowhere\n");
    const r2 = await runVolnode(["--id", "n1", "--data", data, "--cluster", bad]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/Cluster file .* is invalid: nodes\.0\.id: .*nodes\.0\.address/);
  });

  it("exits 2 when its id is not in the cluster file, or the data directory is missing", async () => {
    const r = await runVolnode(["--id", "n9", "--data", data, "--cluster", clusterFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Node n9 is not listed in cluster file .*: its nodes are n1/);

    const missing = path.join(dir, "nope");
    const r2 = await runVolnode(["--id", "n1", "--data", missing, "--cluster", clusterFile]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`Data directory ${missing} does not exist`);

    const r3 = await runVolnode(["--id", "n1", "--cluster", clusterFile]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/--id, --data and --cluster are required/);
  });

  it("refuses at once a second volnode on a data directory in use", async () => {
    const c = await startCluster({ nodes: 1 });
    try {
      const n1 = c.node("n1");
      const r = await runVolnode(["--id", "n1", "--listen", `127.0.0.1:${await freePort()}`, "--data", n1.dataDir, "--cluster", c.clusterFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Data directory .* is in use by another volnode \(pid \d+\)/);
      // The first one is unharmed.
      expect((await c.adminCall<{ node: string }>("n1", "NodeStatus", {})).node).toBe("n1");
      // SIGTERM stops it cleanly (exit 0) and releases the lock.
      expect(await c.kill("n1", "SIGTERM")).toEqual({ code: 0, signal: null });
      await c.restart("n1");
    } finally {
      await c.stop();
    }
  });
});

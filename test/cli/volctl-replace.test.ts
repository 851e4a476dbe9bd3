/** volctl replace as a child process against real volnodes: a replica moved to a fourth node, data intact. */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { json, volctl } from "./volctl-process.js";
import { startCluster, type TestCluster } from "../integration/harness.js";

describe("volctl replace", () => {
  let c: TestCluster;
  let cl: string[];

  beforeAll(async () => {
    c = await startCluster({ nodes: 4 });
    cl = ["--cluster", c.clusterFile];
  }, 40_000);

  afterAll(async () => {
    await c?.stop();
  }, 40_000);

  it("moves a replica to another node with no mount live, and says what is wrong with a bad request", async () => {
    expect((await volctl([...cl, "create", "mv", "--size", "8MiB", "--nodes", "n1,n2,n3"])).code).toBe(0);
    const file = path.join(c.dir, "mv.bin");
    const payload = randomBytes(512 * 1024);
    await writeFile(file, payload);
    expect((await volctl([...cl, "write", "mv", "--offset", "4096", file])).code).toBe(0);

    const bad = await volctl([...cl, "replace", "mv", "--from", "n4", "--to", "n1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/n4 holds no replica of mv and n1 holds one: nothing to replace/);
    const bad2 = await volctl([...cl, "replace", "mv", "--from", "n2", "--to", "n3"]);
    expect(bad2.code).toBe(2);
    expect(bad2.stderr).toMatch(/n3 already holds a replica of mv/);
    const unknown = await volctl([...cl, "replace", "mv", "--from", "n1", "--to", "n9"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/n9 is not in the cluster file/);

    const moved = await volctl([...cl, "--json", "replace", "mv", "--from", "n2", "--to", "n4"]);
    expect(moved.stderr).toBe("");
    expect(moved.code).toBe(0);
    const out = json(moved) as { config: { replicas: string[]; previousReplicas: string[]; learner: unknown }; health: string };
    expect(out.config.replicas.sort()).toEqual(["n1", "n3", "n4"]);
    expect(out.config.previousReplicas).toEqual([]);
    expect(out.config.learner).toBeNull();

    const info = await volctl([...cl, "info", "mv"]);
    expect(info.code).toBe(0);
    expect(info.stdout.toString()).toMatch(/Replica set 4: n1, n4, n3/);
    // Every byte is still there, now read through a mount whose replicas are n1, n3 and n4.
    const back = await volctl([...cl, "read", "mv", "--rw", "--offset", "4096", "--length", String(payload.length)]);
    expect(back.code).toBe(0);
    expect(back.stdout.equals(payload)).toBe(true);
    // Running it again once done changes nothing and says so.
    const again = await volctl([...cl, "replace", "mv", "--from", "n2", "--to", "n4"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/nothing to replace/);
  }, 90_000);
});

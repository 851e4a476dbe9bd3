/** volctl as a child process against real volnodes: exit codes that tell failures apart. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../src/client/index.js";
import { volctl } from "./volctl-process.js";
import { startCluster, type TestCluster } from "../integration/harness.js";

describe("volctl exit codes", () => {
  let c: TestCluster;
  let cl: string[];

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    cl = ["--cluster", c.clusterFile];
  }, 40_000);

  afterAll(async () => {
    await c?.stop();
  }, 40_000);

  it("tells usage errors, busy volumes and unavailable clusters apart by exit code", async () => {
    expect((await volctl(["ls"])).code).toBe(2); // no cluster file
    expect((await volctl([...cl, "create", "x"])).code).toBe(2); // no --size
    expect((await volctl([...cl, "create", "x", "--size", "10GB"])).code).toBe(2); // decimal unit
    expect((await volctl([...cl, "frobnicate"])).code).toBe(2);
    expect((await volctl([...cl, "read", "nosuch", "--offset", "0", "--length", "1"])).code).toBe(3);

    // A library client holds the volume: volctl write fails busy and does not disturb it.
    expect((await volctl([...cl, "create", "held", "--size", "1MiB"])).code).toBe(0);
    const holder = await connect({ cluster: c.clusterFile });
    try {
      const volume = await holder.mount("held", { mode: "rw" });
      const busy = await volctl([...cl, "write", "held", "--offset", "0", "-"], { input: Buffer.from("x") });
      expect(busy.code).toBe(5);
      expect(busy.stderr).toMatch(/fence/);
      await volume.write(0, Buffer.from("still mine"));
    } finally {
      await holder.close();
    }

    for (const n of c.nodes) await c.kill(n.id, "SIGKILL");
    const down = await volctl([...cl, "--json", "ls"]);
    expect(down.code).toBe(4);
    expect((await volctl([...cl, "nodes"])).code).toBe(4);
  }, 60_000);
});

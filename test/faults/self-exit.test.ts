/**
 * bench:faults fails a run in which a volnode exited without the scenario
 * ending it (volnode exits on a broken invariant of the core, as the
 * simulator catches some planted bugs), or did not exit 0 when the scenario
 * stopped it with SIGTERM: FaultCluster.selfExits names it; a node the
 * scenario kills, restarts or stops cleanly is not in it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultCluster } from "../../bench/faults/cluster.js";

describe("bench:faults cluster", () => {
  let dir = "";
  let c: FaultCluster | null = null;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "replivol-self-exit-"));
  });
  afterAll(async () => {
    await c?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("counts a node that exited by itself, not one it ended", { timeout: 60_000 }, async () => {
    c = await FaultCluster.start({ dir, nodes: 3 });
    await c.kill("n1", "SIGKILL");
    await c.restart("n1");
    await c.kill("n2", "SIGTERM");
    // Counted when their output is closed, a moment after they exit.
    await new Promise((r) => setTimeout(r, 300));
    expect(c.selfExits).toEqual([]);

    // Ended from outside the cluster: as a crash or a broken invariant looks to it.
    const pid = c.node("n3").pid;
    expect(pid).not.toBeNull();
    process.kill(pid ?? 0, "SIGKILL");
    for (let i = 0; i < 100 && c.selfExits.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(c.selfExits).toHaveLength(1);
    expect(c.selfExits[0]).toMatch(/^volnode n3 exited by itself \(code null, signal SIGKILL\)/);
  });
});

/**
 * Read-only mounts: served by any in-sync replica without an epoch, so they
 * fence nobody; they read committed data only, say how stale it may be, and
 * refuse every change.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, InvalidArgumentError, type Cluster } from "../../src/client/index.js";
import { limits } from "../../src/core/limits.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;
/** A follower applies a committed write when the next append or heartbeat tells it the commit point. */
const APPLY_WAIT_MS = 20 * limits.heartbeatMs;

describe("read-only mounts", () => {
  let c: TestCluster;
  let writer: Cluster;
  let reader: Cluster;

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("ro", 256);
    writer = await connect({ cluster: c.clusterFile });
    reader = await connect({ cluster: c.clusterFile });
  }, 40_000);

  afterAll(async () => {
    await writer?.close();
    await reader?.close();
    await c?.stop();
  }, 40_000);

  it("read committed data next to a live writer, which they do not fence, and refuse changes", async () => {
    const w = await writer.mount("ro", { mode: "rw" });
    const fenced: unknown[] = [];
    w.on("fenced", (e) => fenced.push(e));
    const data = randomBytes(4 * BLOCK);
    await w.write(3 * BLOCK + 17, data);

    const r = await reader.mount("ro", { mode: "ro" });
    expect(r.readOnly).toBe(true);
    // Committed data shows up on every in-sync replica within a few heartbeats.
    let seen = false;
    for (const until = Date.now() + APPLY_WAIT_MS; !seen && Date.now() < until; await sleep(50)) {
      seen = Buffer.from(await r.read(3 * BLOCK + 17, data.length)).equals(data);
    }
    expect(seen).toBe(true);
    // The writer holds the lease, so the serving replica heard from it within a lease.
    expect(r.staleMs).toBeGreaterThanOrEqual(0);
    expect(r.staleMs).toBeLessThan(limits.leaseMs);

    await expect(r.write(0, randomBytes(BLOCK))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(r.trim(0, BLOCK)).rejects.toBeInstanceOf(InvalidArgumentError);

    // The writer was not disturbed: its mount and epoch stand.
    const more = randomBytes(BLOCK);
    const epoch = w.epoch;
    await w.write(0, more);
    expect(w.epoch).toBe(epoch);
    expect(fenced).toHaveLength(0);
    expect(Buffer.from(await w.read(0, BLOCK)).equals(more)).toBe(true);

    // Closing the read-only mount leaves the writer's mount alone.
    await r.close();
    await w.write(BLOCK, more);
    await w.close();
  }, 60_000);
});

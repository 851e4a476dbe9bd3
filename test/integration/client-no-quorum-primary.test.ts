/**
 * SIGKILL the primary and one follower: the failover finds no quorum, the
 * writes fail with NoQuorumError within the stated bound, nothing
 * acknowledged is lost, and the next write after a node returns mounts
 * again and goes through.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect, noQuorumBoundMs, NoQuorumError, type Cluster, type Volume } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;
/** The stated bound, plus slack for the test's own scheduling. */
const NO_QUORUM_BOUND_MS = noQuorumBoundMs + 1000;

describe("client without a quorum after losing its primary", () => {
  let c: TestCluster;
  let cluster: Cluster | undefined;

  beforeEach(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("nq", 256);
  }, 40_000);

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    await c?.stop();
  }, 40_000);

  async function writeAcked(volume: Volume, written: Map<number, Buffer>, slot: number): Promise<void> {
    const data = randomBytes(BLOCK);
    await volume.write(slot * BLOCK, data);
    written.set(slot, data);
  }

  async function expectAllRead(volume: Volume, written: Map<number, Buffer>): Promise<void> {
    for (const [slot, data] of written) expect(Buffer.from(await volume.read(slot * BLOCK, BLOCK)).equals(data), `slot ${slot}`).toBe(true);
  }

  it("fails writes with NoQuorumError when the primary and a follower die, and mounts again once one returns", async () => {
    cluster = await connect({ cluster: c.clusterFile });
    const volume = await cluster.mount("nq", { mode: "rw" });
    const written = new Map<number, Buffer>();
    for (let slot = 0; slot < 20; slot++) await writeAcked(volume, written, slot);

    const primary = volume.primary;
    const follower = ["n1", "n2", "n3"].find((n) => n !== primary) ?? "n1";
    await Promise.all([c.kill(primary, "SIGKILL"), c.kill(follower, "SIGKILL")]);

    const started = Date.now();
    await expect(writeAcked(volume, written, 20)).rejects.toBeInstanceOf(NoQuorumError);
    expect(Date.now() - started).toBeLessThan(NO_QUORUM_BOUND_MS);

    await c.restart(follower);
    // The next write mounts again through a replica node (same client, no takeover) and goes through.
    await writeAcked(volume, written, 21);
    expect(volume.primary).not.toBe(primary);
    await expectAllRead(volume, written);
  }, 60_000);
});

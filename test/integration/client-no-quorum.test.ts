/**
 * SIGKILL two of three replica nodes: writes fail with NoQuorumError within
 * the stated bound, nothing acknowledged is lost, and writes resume once one
 * node returns.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connect, noQuorumBoundMs, NoQuorumError, type Cluster, type DegradedEvent, type Volume } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;
/** The stated bound, plus slack for the test's own scheduling. */
const NO_QUORUM_BOUND_MS = noQuorumBoundMs + 1000;

describe("client without a quorum", () => {
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

  it("fails writes with NoQuorumError when both followers die, and resumes when one returns", async () => {
    cluster = await connect({ cluster: c.clusterFile });
    const volume = await cluster.mount("nq", { mode: "rw" });
    const degraded: DegradedEvent[] = [];
    volume.on("degraded", (e) => degraded.push(e));
    const written = new Map<number, Buffer>();
    for (let slot = 0; slot < 20; slot++) await writeAcked(volume, written, slot);

    const followers = ["n1", "n2", "n3"].filter((n) => n !== volume.primary);
    await Promise.all(followers.map((n) => c.kill(n, "SIGKILL")));

    const started = Date.now();
    const failures = await Promise.allSettled([20, 21, 22].map((slot) => writeAcked(volume, written, slot)));
    const elapsed = Date.now() - started;
    for (const f of failures) {
      expect(f.status).toBe("rejected");
      if (f.status === "rejected") expect(f.reason).toBeInstanceOf(NoQuorumError);
    }
    expect(elapsed).toBeLessThan(NO_QUORUM_BOUND_MS);
    expect(degraded.some((d) => d.reason === "no-quorum")).toBe(true);

    const back = followers[0] ?? "n1";
    await c.restart(back);
    // The next write mounts again (same client, no takeover) and goes through.
    for (let slot = 30; slot < 40; slot++) await writeAcked(volume, written, slot);
    await expectAllRead(volume, written);
  }, 60_000);
});

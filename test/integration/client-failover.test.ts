/**
 * SIGKILL the primary in the middle of a stream of writes: the library
 * fails over to another replica node, replays what was not acknowledged,
 * and the application sees a pause, not an error.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clientLimits, connect, type Cluster, type FailoverEvent } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;
const BLOCKS = 4096;

describe("client failover", () => {
  let c: TestCluster;
  let cluster: Cluster | undefined;

  beforeEach(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("fo", BLOCKS);
  }, 40_000);

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    await c?.stop();
  }, 40_000);

  it("completes a write stream across a SIGKILL of the primary and keeps every acknowledged write", async () => {
    cluster = await connect({ cluster: c.clusterFile });
    const volume = await cluster.mount("fo", { mode: "rw" });
    const firstPrimary = volume.primary;
    const failovers: FailoverEvent[] = [];
    volume.on("failover", (e) => failovers.push(e));

    // 600 writes of 1-3 blocks at unaligned offsets, none overlapping, 16 in flight.
    const writes = Array.from({ length: 600 }, (_, i) => ({ offset: i * 4 * BLOCK + (i % 7) * 100, data: randomBytes(BLOCK + (i % 3) * BLOCK) }));
    const acknowledged = new Set<number>();
    let killed = false;
    let next = 0;
    const writer = async (): Promise<void> => {
      while (next < writes.length) {
        const i = next++;
        const w = writes[i];
        if (w === undefined) return;
        await volume.write(w.offset, w.data);
        acknowledged.add(i);
        if (!killed && acknowledged.size === 100) {
          killed = true;
          await c.kill(firstPrimary, "SIGKILL");
        }
      }
    };
    // A reader keeps reading a region written before the stream: its reads pause, never fail.
    const fixed = randomBytes(8 * BLOCK);
    const fixedOffset = (BLOCKS - 8) * BLOCK;
    await volume.write(fixedOffset, fixed);
    let reads = 0;
    let writing = true;
    const reader = async (): Promise<void> => {
      while (writing) {
        const back = await volume.read(fixedOffset + 1000, fixed.length - 2000);
        expect(Buffer.from(back).equals(fixed.subarray(1000, fixed.length - 1000))).toBe(true);
        reads++;
      }
    };
    const started = Date.now();
    const readers = Promise.all([reader(), reader()]);
    await Promise.all(Array.from({ length: 16 }, () => writer()));
    writing = false;
    await readers;
    const elapsed = Date.now() - started;
    expect(reads).toBeGreaterThan(10);

    expect(killed).toBe(true);
    expect(acknowledged.size).toBe(writes.length);
    expect(failovers.length).toBeGreaterThanOrEqual(1);
    const f = failovers[0];
    expect(f?.from).toBe(firstPrimary);
    expect(f?.to).not.toBe(firstPrimary);
    expect(f?.epoch).toBeGreaterThan(f?.previousEpoch ?? Infinity);
    expect(f?.pauseMs).toBeLessThan(clientLimits.failoverTimeoutMs);
    expect(volume.primary).not.toBe(firstPrimary);
    expect(elapsed).toBeLessThan(clientLimits.failoverTimeoutMs + 20_000);

    // Every acknowledged write reads back, through the new primary.
    for (const [i, w] of writes.entries()) {
      const back = await volume.read(w.offset, w.data.length);
      expect(Buffer.from(back).equals(w.data), `write ${i} at ${w.offset}`).toBe(true);
    }

    // And from a fresh client after the old primary returns and the volume is remounted elsewhere.
    await volume.close();
    await c.restart(firstPrimary);
    const other = await connect({ cluster: c.clusterFile });
    try {
      const again = await other.mount("fo", { mode: "rw" });
      for (const w of writes.slice(0, 120)) expect(Buffer.from(await again.read(w.offset, w.data.length)).equals(w.data)).toBe(true);
    } finally {
      await other.close();
    }
  }, 60_000);

  it("fails over from a primary that stops answering (SIGSTOP) once no reply came within the bound", async () => {
    cluster = await connect({ cluster: c.clusterFile });
    const volume = await cluster.mount("fo", { mode: "rw" });
    const stuck = volume.primary;
    const before = randomBytes(3 * BLOCK);
    await volume.write(0, before);
    const failovers: FailoverEvent[] = [];
    volume.on("failover", (e) => failovers.push(e));

    const pid = c.node(stuck).pid;
    expect(pid).not.toBeNull();
    process.kill(pid ?? 0, "SIGSTOP");
    try {
      const started = Date.now();
      const data = randomBytes(5 * BLOCK + 10);
      await volume.write(7 * BLOCK + 5, data);
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(clientLimits.replyTimeoutMs - 1000);
      expect(elapsed).toBeLessThan(clientLimits.replyTimeoutMs + clientLimits.failoverTimeoutMs);
      expect(failovers.map((f) => f.from)).toEqual([stuck]);
      expect(volume.primary).not.toBe(stuck);
      expect(Buffer.from(await volume.read(7 * BLOCK + 5, data.length)).equals(data)).toBe(true);
      expect(Buffer.from(await volume.read(0, before.length)).equals(before)).toBe(true);
    } finally {
      process.kill(pid ?? 0, "SIGCONT");
    }
  }, 60_000);
});

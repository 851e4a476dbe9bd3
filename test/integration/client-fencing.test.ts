/**
 * Takeover, not tug of war: a second client mounting without takeover gets
 * VolumeBusyError; with takeover it fences the first, whose every later
 * call fails with FencedError and none of whose later writes is readable.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, FencedError, VolumeBusyError, type Cluster, type Volume } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;

describe("client fencing", () => {
  let c: TestCluster;
  let first: Cluster;
  let second: Cluster;

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("fence", 256);
    first = await connect({ cluster: c.clusterFile });
    second = await connect({ cluster: c.clusterFile });
  }, 40_000);

  afterAll(async () => {
    await first?.close();
    await second?.close();
    await c?.stop();
  }, 40_000);

  it("refuses a second client without takeover, fences the first with takeover", async () => {
    const a: Volume = await first.mount("fence", { mode: "rw" });
    const before = randomBytes(8 * BLOCK);
    await a.write(0, before);

    // Through every node: the live mount is never disturbed without takeover.
    await expect(second.mount("fence", { mode: "rw" })).rejects.toBeInstanceOf(VolumeBusyError);
    expect(Buffer.from(await a.read(0, before.length)).equals(before)).toBe(true);

    const fenced: FencedError[] = [];
    a.on("fenced", (e) => fenced.push(e));
    const failovers: unknown[] = [];
    a.on("failover", (e) => failovers.push(e));

    const b = await second.mount("fence", { mode: "rw", takeover: true });
    expect(b.epoch).toBeGreaterThan(a.epoch);

    // The first client's next I/O, and every one after it, fails with FencedError; it never retries.
    const late = Array.from({ length: 4 }, () => randomBytes(2 * BLOCK));
    await expect(a.write(0, late[0] ?? new Uint8Array(1))).rejects.toBeInstanceOf(FencedError);
    for (const [i, data] of late.entries()) await expect(a.write(i * 2 * BLOCK + 100, data)).rejects.toBeInstanceOf(FencedError);
    await expect(a.read(0, BLOCK)).rejects.toBeInstanceOf(FencedError);
    await expect(a.flush()).rejects.toBeInstanceOf(FencedError);
    expect(fenced).toHaveLength(1);
    expect(failovers).toHaveLength(0);

    // None of the fenced client's later writes is readable by the new one.
    expect(Buffer.from(await b.read(0, before.length)).equals(before)).toBe(true);
    const mine = randomBytes(BLOCK);
    await b.write(0, mine);
    expect(Buffer.from(await b.read(0, BLOCK)).equals(mine)).toBe(true);
    await a.close();
    await b.close();
  }, 50_000);

  it("fences writes that were in flight at the takeover: each is either readable or refused", async () => {
    const a = await first.mount("fence", { mode: "rw", takeover: true });
    const writes = Array.from({ length: 64 }, (_, i) => ({ offset: i * BLOCK, data: randomBytes(BLOCK) }));
    const outcomes = writes.map((w) => a.write(w.offset, w.data).then(() => "acked" as const, (e: unknown) => e));
    const b = await second.mount("fence", { mode: "rw", takeover: true });
    const results = await Promise.all(outcomes);
    for (const r of results) if (r !== "acked") expect(r).toBeInstanceOf(FencedError);
    // Acknowledged writes are all there; refused ones never show up later.
    const back = await b.read(0, writes.length * BLOCK);
    for (const [i, w] of writes.entries()) {
      const got = Buffer.from(back.subarray(i * BLOCK, (i + 1) * BLOCK));
      if (results[i] === "acked") expect(got.equals(w.data), `write ${i}`).toBe(true);
    }
    await expect(a.write(0, new Uint8Array(10))).rejects.toBeInstanceOf(FencedError);
    await a.close();
    await b.close();
  }, 50_000);
});

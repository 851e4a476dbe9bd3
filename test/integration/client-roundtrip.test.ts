/** The client library against real volnodes: byte-addressed I/O round-trips, in issue order, across block and request boundaries. */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientLimits, connect, InvalidArgumentError, OutOfRangeError, type Cluster, type Volume } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;
const BLOCKS = 1024;

/** A deterministic generator so a failure replays (xorshift32). */
function generator(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

describe("client library round trip", () => {
  let c: TestCluster;
  let cluster: Cluster;
  let volume: Volume;

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("rt", BLOCKS);
    cluster = await connect({ cluster: c.clusterFile });
    volume = await cluster.mount("rt", { mode: "rw" });
  }, 40_000);

  afterAll(async () => {
    await cluster?.close();
    await c?.stop();
  }, 40_000);

  it("reports the volume's size and epoch", () => {
    expect(volume.size).toBe(BLOCKS * BLOCK);
    expect(volume.epoch).toBeGreaterThan(0);
    expect(["n1", "n2", "n3"]).toContain(volume.primary);
  });

  it("reads back random writes, trims and write-zeroes at any offset, applied in the order issued", async () => {
    const next = generator(20261126);
    const model = new Uint8Array(volume.size);
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      // Mostly small ranges near block edges, some spanning many blocks.
      const length = next(10) === 0 ? 1 + next(5 * BLOCK) : 1 + next(2 * BLOCK);
      const offset = next(volume.size - length + 1);
      const op = next(10);
      if (op < 8) {
        const data = randomBytes(length);
        model.set(data, offset);
        pending.push(volume.write(offset, data));
      } else if (op === 8) {
        model.fill(0, offset, offset + length);
        pending.push(volume.writeZeroes(offset, length));
      } else {
        // Trim drops only the whole blocks inside the range.
        const first = Math.ceil(offset / BLOCK) * BLOCK;
        const end = Math.floor((offset + length) / BLOCK) * BLOCK;
        if (end > first) model.fill(0, first, end);
        pending.push(volume.trim(offset, length));
      }
    }
    await Promise.all(pending);
    await volume.flush();
    const back = await volume.read(0, volume.size);
    expect(back.length).toBe(model.length);
    const firstDiff = back.findIndex((b, i) => b !== model[i]);
    expect(firstDiff).toBe(-1);
  });

  it("splits a write larger than one request at an unaligned offset and reads it back", async () => {
    const length = clientLimits.requestBlocksMax * BLOCK * 2 + 12345;
    const offset = 3 * BLOCK + 777;
    const data = randomBytes(length);
    await volume.write(offset, data);
    const back = await volume.read(offset, length);
    expect(Buffer.from(back).equals(data)).toBe(true);
    const edges = await volume.read(offset - 1, 1);
    expect(edges.length).toBe(1);
  });

  it("serves many large reads in flight at once, each with its own bytes", async () => {
    // The node serves reads over 16 KiB into pooled buffers and replies in pooled frames, reused once
    // grpc-js is done with them (src/node/volume-service.ts). 32 MiB in flight against the client's 8 MiB
    // window keeps replies queued on the node: a frame or buffer reused too early would show here.
    const whole = randomBytes(volume.size);
    await volume.write(0, whole);
    const next = generator(20261128);
    const reads = Array.from({ length: 48 }, (_, i) => {
      // Mostly 1 MiB, so that frames share a size and one given back early would serve the next.
      const length = i % 4 === 3 ? 64 * 1024 + next(960 * 1024) : 1024 * 1024;
      const offset = i % 2 === 0 ? next(volume.size / BLOCK - length / BLOCK) * BLOCK : next(volume.size - length + 1);
      return { offset, length };
    });
    const back = await Promise.all(reads.map((r) => volume.read(r.offset, r.length)));
    reads.forEach((r, i) => {
      expect(Buffer.from(back[i] as Uint8Array).equals(whole.subarray(r.offset, r.offset + r.length)), `read ${i} of ${r.length} bytes at ${r.offset}`).toBe(true);
    });
  });

  it("refuses I/O past the end and bad arguments without touching the volume", async () => {
    await expect(volume.read(volume.size - 10, 11)).rejects.toBeInstanceOf(OutOfRangeError);
    await expect(volume.write(volume.size, new Uint8Array(1))).rejects.toBeInstanceOf(OutOfRangeError);
    await expect(volume.read(-1, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(volume.read(1.5, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await volume.read(0, 0)).length).toBe(0);
  });

  it("mounts again after close with the writes still there", async () => {
    const data = randomBytes(5000);
    await volume.write(100_000, data);
    await volume.close();
    await expect(volume.read(0, 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    volume = await cluster.mount("rt", { mode: "rw" });
    expect(Buffer.from(await volume.read(100_000, 5000)).equals(data)).toBe(true);
    // The client's sequence numbers continue across mounts: a new write is not taken for a replay.
    const again = randomBytes(5000);
    await volume.write(100_000, again);
    expect(Buffer.from(await volume.read(100_000, 5000)).equals(again)).toBe(true);
  });

  it("leaves every replica applied through the last write once the client closes", async () => {
    await volume.write(200_000, randomBytes(BLOCK));
    await volume.close();
    const applied = async (): Promise<number[]> =>
      Promise.all(c.nodes.map(async (n) => (await c.adminCall<{ appliedLsn: number }>(n.id, "ReplicaStatus", { volume: "rt" })).appliedLsn));
    // Bounded wait: the followers apply once they hear the final commit point.
    let seen = await applied();
    for (let i = 0; i < 50 && new Set(seen).size > 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await applied();
    }
    expect(new Set(seen).size, `applied points ${seen.join(", ")}`).toBe(1);
    volume = await cluster.mount("rt", { mode: "rw" });
  });

  it("mounts through the node named by via, and refuses a node the cluster file does not list", async () => {
    const data = randomBytes(BLOCK);
    await volume.write(300_000, data);
    await volume.close();
    const last = c.nodes[c.nodes.length - 1]?.id ?? "";
    volume = await cluster.mount("rt", { mode: "rw", via: last });
    expect(volume.primary).toBe(last);
    expect(Buffer.from(await volume.read(300_000, BLOCK)).equals(data)).toBe(true);
    await volume.close();
    await expect(cluster.mount("rt", { mode: "rw", via: "nowhere" })).rejects.toBeInstanceOf(InvalidArgumentError);
    volume = await cluster.mount("rt", { mode: "rw" });
  });
});

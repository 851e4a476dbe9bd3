/**
 * Real volnodes killed and restarted under a write stream: acknowledged
 * writes survive (P1), writes go on with a majority (P6), and a replica that
 * comes back catches up without anyone typing a command.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, waitFor as waitForAtMost } from "./harness.js";
import { RawVolumeClient } from "./raw-volume.js";

const BLOCK = 4096;
const ROUNDS = 40;
const PER_ROUND = 16;
const WAIT_MS = 20_000;

interface FollowerWire {
  node: string;
  matchLsn: number;
  consistent: boolean;
  resyncing: boolean;
}

const waitFor = <T>(what: string, probe: () => Promise<T | null>, timeoutMs = WAIT_MS): Promise<T> => waitForAtMost(what, probe, timeoutMs);

describe("volnode under crashes", () => {
  let c: TestCluster;
  const clients: RawVolumeClient[] = [];
  /** What was acknowledged: block -> bytes. */
  const acked = new Map<number, Buffer>();

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("faults", 1024);
  }, 30_000);

  afterAll(async () => {
    for (const v of clients) v.close();
    await c?.stop();
  }, 30_000);

  it("keeps acknowledging writes while a non-primary replica is SIGKILLed, and the replica catches up when it returns", async () => {
    const v = new RawVolumeClient(c.node("n1").address);
    clients.push(v);
    const m = await v.mount("faults", "writer");
    const io = v.openIo("faults", "writer", m.epoch);
    let killed: Promise<unknown> | null = null;
    for (let round = 0; round < ROUNDS; round++) {
      if (round === 10) killed = c.kill("n3", "SIGKILL");
      const writes = Array.from({ length: PER_ROUND }, (_, i) => ({ block: round * PER_ROUND + i, data: randomBytes(BLOCK) }));
      const replies = await io.batch(writes.map((w) => ({ kind: "IO_KIND_WRITE" as const, offset: w.block * BLOCK, data: w.data })));
      replies.forEach((r, i) => {
        expect(r, `round ${round} write ${i}: ${r.message ?? ""}`).toMatchObject({ ok: true });
        const w = writes[i];
        if (w !== undefined) acked.set(w.block, w.data);
      });
    }
    expect(await killed).toMatchObject({ signal: "SIGKILL" });
    // Every acknowledged write reads back, through the primary.
    for (let b = 0; b < ROUNDS * PER_ROUND; b += 256) {
      const r = await io.read(b * BLOCK, 256 * BLOCK);
      expect(r.ok).toBe(true);
      const got = Buffer.from(r.data ?? []);
      for (let i = 0; i < 256; i++) {
        const want = acked.get(b + i);
        if (want !== undefined) expect(got.subarray(i * BLOCK, (i + 1) * BLOCK).equals(want), `block ${b + i}`).toBe(true);
      }
    }
    const st = await c.adminCall<{ commitLsn: number }>("n1", "ReplicaStatus", { volume: "faults" });
    await c.restart("n3");
    const back = await waitFor("n3 back in sync", async () => {
      const s = await c.adminCall<{ followers: FollowerWire[] }>("n1", "ReplicaStatus", { volume: "faults" });
      const f = s.followers.find((x) => x.node === "n3");
      return f !== undefined && f.consistent && !f.resyncing && f.matchLsn >= st.commitLsn ? f : null;
    });
    expect(back.matchLsn).toBeGreaterThanOrEqual(st.commitLsn);
    io.end();
  }, 45_000);

  it("keeps every acknowledged write when every node is SIGKILLed and restarted", async () => {
    expect(acked.size).toBe(ROUNDS * PER_ROUND);
    for (const n of c.nodes) await c.kill(n.id, "SIGKILL");
    for (const n of c.nodes) await c.restart(n.id);
    // Another client, through another node: the old mount's lease runs out meanwhile.
    const v = new RawVolumeClient(c.node("n2").address);
    clients.push(v);
    const m = await waitFor("mount after restart", () => v.mount("faults", "reader"));
    const io = v.openIo("faults", "reader", m.epoch);
    for (let b = 0; b < ROUNDS * PER_ROUND; b += 256) {
      const count = Math.min(256, ROUNDS * PER_ROUND - b);
      const r = await io.read(b * BLOCK, count * BLOCK);
      expect(r, r.message).toMatchObject({ ok: true });
      const got = Buffer.from(r.data ?? []);
      for (let i = 0; i < count; i++) {
        const want = acked.get(b + i);
        expect(want).toBeDefined();
        if (want !== undefined) expect(got.subarray(i * BLOCK, (i + 1) * BLOCK).equals(want), `block ${b + i}`).toBe(true);
      }
    }
    // Never-written blocks read as zeros.
    const tail = await io.read(1000 * BLOCK, 24 * BLOCK);
    expect(Buffer.from(tail.data ?? []).equals(Buffer.alloc(24 * BLOCK))).toBe(true);
    io.end();
    await v.unmount("faults", "reader");
  }, 45_000);

  it("stops cleanly on SIGTERM (exit 0) and serves the same data after a restart", async () => {
    for (const n of c.nodes) expect(await c.kill(n.id, "SIGTERM")).toEqual({ code: 0, signal: null });
    for (const n of c.nodes) await c.restart(n.id);
    const v = new RawVolumeClient(c.node("n3").address);
    clients.push(v);
    const m = await waitFor("mount after a clean restart", () => v.mount("faults", "reader"));
    const io = v.openIo("faults", "reader", m.epoch);
    const r = await io.read(0, ROUNDS * PER_ROUND * BLOCK > 1024 * BLOCK ? 1024 * BLOCK : ROUNDS * PER_ROUND * BLOCK);
    expect(r, r.message).toMatchObject({ ok: true });
    const got = Buffer.from(r.data ?? []);
    for (const [block, want] of acked) expect(got.subarray(block * BLOCK, (block + 1) * BLOCK).equals(want), `block ${block}`).toBe(true);
    io.end();
  }, 45_000);
});

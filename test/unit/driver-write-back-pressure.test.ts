/**
 * A primary whose disk falls behind pushes back on its clients: while a
 * checkpoint under way has not written the 32 MiB of block data the
 * primary holds (HELD_BLOCK_BYTES_MAX), the next client write is not handed
 * to the core; it goes, in its order and before every request that came
 * after it, once the checkpoint is over or it has waited a second
 * (ADMISSION_WAIT_MS_MAX: the core's write timeout starts only when it is
 * handed over). Without it the blocks held in memory grew with every write
 * a slow data file had not yet taken. Three VolumeDrivers on memory stores
 * in this process; the primary's checkpoints wait for the test's word.
 */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { PeerMessage } from "../../src/core/messages.js";
import { asBlock, asClientId, asNodeId, type NodeId } from "../../src/core/types.js";
import { VolumeDriver } from "../../src/node/volume-driver.js";
import { createMemoryReplicaStore } from "../../src/storage/memory-replica-store.js";
import type { ReplicaStore } from "../../src/storage/replica-store.js";
import { BLOCK_SIZE, volumeConfig } from "../storage/fixtures.js";
import { holdingCheckpoints } from "./held-checkpoints.js";

const drivers = new Map<NodeId, VolumeDriver>();
const releases: (() => void)[] = [];

afterEach(async () => {
  for (const r of releases.splice(0)) r();
  for (const d of drivers.values()) await d.close().catch(() => undefined);
  drivers.clear();
});

async function until(what: string, probe: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!probe()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const WRITE_BLOCKS = 1024; // 4 MiB, the largest request

/** Three drivers, n1 the primary of a mounted client, its checkpoints held; 4 MiB writes to the i-th 4 MiB. */
async function heldPrimary(): Promise<{ primary: VolumeDriver; write: (i: number) => ReturnType<VolumeDriver["write"]>; checkpoints: () => number; held: () => number }> {
  const config = volumeConfig("held", 16 * WRITE_BLOCKS);
  let checkpoints = (): number => 0;
  let held = (): number => 0;
  for (const id of config.replicas) {
    const { store: plain } = await createMemoryReplicaStore(config);
    let store: ReplicaStore = plain;
    if (id === asNodeId("n1")) {
      const h = holdingCheckpoints(plain, releases);
      store = h.store;
      checkpoints = h.began;
      held = () => plain.heldBlocks();
    }
    const peers = {
      send(to: NodeId, _volume: string, msg: PeerMessage): void {
        queueMicrotask(() => drivers.get(to)?.deliver(id, msg));
      },
    };
    drivers.set(id, await VolumeDriver.open(store, { nodeId: id, peers, logger: pino({ level: "silent" }), onInvariantBroken: (err) => { throw err; } }));
  }
  const primary = drivers.get(asNodeId("n1"));
  if (primary === undefined) throw new Error("no n1");
  const client = asClientId("c-held");
  expect((await primary.mount(client, false)).ok).toBe(true);
  let seq = 0;
  const write = (i: number): ReturnType<VolumeDriver["write"]> =>
    primary.write({ type: "write", clientId: client, clientSeq: ++seq, kind: "write", block: asBlock(i * WRITE_BLOCKS), blockCount: WRITE_BLOCKS, data: Buffer.alloc(WRITE_BLOCKS * BLOCK_SIZE, i + 1) });
  // 36 MiB written and acknowledged; the primary's first checkpoint (begun at 16 MiB logged) is held.
  for (let i = 0; i < 9; i++) expect((await write(i)).ok).toBe(true);
  await until("the primary began a checkpoint", () => checkpoints() === 1);
  await until("the primary applied every write", () => held() === 9 * WRITE_BLOCKS);
  return { primary, write, checkpoints, held };
}

describe("VolumeDriver as a primary whose checkpoint falls behind", () => {
  it("hands no more client writes to the core until the checkpoint under way is over, and keeps the order of every request", async () => {
    const { primary, write, checkpoints } = await heldPrimary();
    // The next two writes wait: the primary holds more than 32 MiB that no checkpoint has written.
    // A read of what the second writes, given after it, waits behind them.
    const answered: string[] = [];
    const tenth = write(9).then((r) => (answered.push("write 9"), r));
    const eleventh = write(10).then((r) => (answered.push("write 10"), r));
    const read = primary.read(asBlock(10 * WRITE_BLOCKS), 1).then((r) => (answered.push("read"), r));
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toEqual([]);
    // The checkpoint ends: they go, in their order.
    releases.shift()?.();
    expect((await tenth).ok).toBe(true);
    expect((await eleventh).ok).toBe(true);
    const r = await read;
    expect(answered).toEqual(["write 9", "write 10", "read"]);
    expect(r.ok && Buffer.from(r.data).every((b) => b === 11)).toBe(true);
    await until("the next checkpoint began", () => checkpoints() === 2);
  }, 60_000);

  it("hands a write over after a second even while the checkpoint still writes", async () => {
    const { write, checkpoints } = await heldPrimary();
    // The checkpoint is never released here: the write waits a second, then goes (and commits).
    const t0 = Date.now();
    expect((await write(9)).ok).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(checkpoints()).toBe(1);
  }, 60_000);
});

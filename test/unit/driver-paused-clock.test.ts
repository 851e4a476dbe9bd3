/**
 * The driver steps the core with the clock's time, also right after a pause
 * of the process: three VolumeDrivers on memory stores in this process, a
 * peer network that can cut a node off. The primary is cut from its peers,
 * then this thread is blocked for longer than a lease (a pause: no timer of
 * any driver runs), and a read is given to the primary before the event
 * loop runs again. Its lease ran out during the pause (nobody acknowledged
 * anything), so the read must not be served; judged by the time of its last
 * tick (before the pause), it was.
 */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { limits } from "../../src/core/limits.js";
import type { PeerMessage } from "../../src/core/messages.js";
import { asBlock, asClientId, asNodeId, type NodeId } from "../../src/core/types.js";
import { VolumeDriver } from "../../src/node/volume-driver.js";
import { createMemoryReplicaStore } from "../../src/storage/memory-replica-store.js";
import { volumeConfig } from "../storage/fixtures.js";

const drivers = new Map<NodeId, VolumeDriver>();
const cut = new Set<NodeId>();

afterEach(async () => {
  cut.clear();
  for (const d of drivers.values()) await d.close().catch(() => undefined);
  drivers.clear();
});

async function openDrivers(): Promise<void> {
  const config = volumeConfig("paused", 64);
  for (const id of config.replicas) {
    const { store } = await createMemoryReplicaStore(config);
    const peers = {
      send(to: NodeId, _volume: string, msg: PeerMessage): void {
        if (cut.has(id) || cut.has(to)) return;
        queueMicrotask(() => drivers.get(to)?.deliver(id, msg));
      },
    };
    const d = await VolumeDriver.open(store, {
      nodeId: id,
      peers,
      logger: pino({ level: "silent" }),
      onInvariantBroken: (err) => {
        throw err;
      },
    });
    drivers.set(id, d);
  }
}

/** Blocks this thread: no timer runs meanwhile, as in a paused process. */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe("VolumeDriver after a pause of the process", () => {
  it("does not serve a read by a lease that ran out during the pause", async () => {
    await openDrivers();
    const n1 = asNodeId("n1");
    const primary = drivers.get(n1);
    if (primary === undefined) throw new Error("no n1");
    const client = asClientId("c-paused");
    const mounted = await primary.mount(client, false);
    expect(mounted.ok).toBe(true);
    const w = await primary.write({ type: "write", clientId: client, clientSeq: 1, kind: "write", block: asBlock(0), blockCount: 1, data: Buffer.alloc(4096, 7) });
    expect(w.ok).toBe(true);
    const before = await primary.read(asBlock(0), 1);
    expect(before.ok).toBe(true);

    cut.add(n1);
    pause(limits.leaseMs + 500);
    // Given before the event loop turns: before any timer of the woken process.
    let answered: boolean | null = null;
    const read = primary.read(asBlock(0), 1).then((r) => (answered = r.ok));
    await new Promise((r) => setTimeout(r, 300));
    expect(answered, "a read served by a lease that ran out while the process was paused").not.toBe(true);
    cut.delete(n1);
    await read;
  }, 30_000);
});

/**
 * A resync target pushes back on its source: while a checkpoint writes,
 * the regions it installs past CHECKPOINT_INSTALLED_BYTES are acknowledged
 * (their durable completion reaches the core, which then answers the
 * source) only once that checkpoint is over (or 400 ms later, which this
 * test stays under), and the next checkpoint starts at once. Without it a
 * source faster than the target's disk filled the
 * target's memory with the whole resync. One VolumeDriver on a memory
 * store whose checkpoint the test holds; installRegion actions are given
 * to it as the core would.
 */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { limits } from "../../src/core/limits.js";
import type { CoreAction, CoreEvent } from "../../src/core/messages.js";
import { asEpoch, asLsn, asNodeId } from "../../src/core/types.js";
import { CHECKPOINT_INSTALLED_BYTES, VolumeDriver } from "../../src/node/volume-driver.js";
import { createMemoryReplicaStore } from "../../src/storage/memory-replica-store.js";
import { BLOCK_SIZE, volumeConfig } from "../storage/fixtures.js";
import { holdingCheckpoints } from "./held-checkpoints.js";

interface DriverInternals {
  execute(a: CoreAction): void;
  post(e: CoreEvent): void;
}

const REGION_BYTES = limits.regionBlocks * BLOCK_SIZE;
const opened: VolumeDriver[] = [];

afterEach(async () => {
  for (const d of opened.splice(0)) await d.close().catch(() => undefined);
});

async function until(what: string, probe: () => boolean, ms = 5_000): Promise<void> {
  const t0 = Date.now();
  while (!probe()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("VolumeDriver installing regions", () => {
  it("acknowledges regions past the installed-bytes bound only after the checkpoint under way", async () => {
    const regionsPerCheckpoint = CHECKPOINT_INSTALLED_BYTES / REGION_BYTES;
    expect(Number.isInteger(regionsPerCheckpoint)).toBe(true);
    const config = volumeConfig("bp", (3 * regionsPerCheckpoint + 2) * limits.regionBlocks);
    const { store } = await createMemoryReplicaStore(config);
    // Checkpoints wait for the test's word.
    const releases: (() => void)[] = [];
    const { store: held, began: checkpoints } = holdingCheckpoints(store, releases);
    const driver = await VolumeDriver.open(held, {
      nodeId: asNodeId("n2"),
      peers: { send: () => undefined },
      logger: pino({ level: "silent" }),
      onInvariantBroken: (err) => {
        throw err;
      },
    });
    opened.push(driver);
    // The durable completions of the test's tokens stop here: the core never issued them.
    const internals = driver as unknown as DriverInternals;
    const post = internals.post.bind(driver);
    const acked: number[] = [];
    const FIRST_TOKEN = 1_000_000;
    internals.post = (e: CoreEvent): void => {
      if (e.type === "durable" && e.token >= FIRST_TOKEN) acked.push(e.token - FIRST_TOKEN);
      else post(e);
    };
    const install = (region: number): void =>
      internals.execute({
        type: "installRegion",
        region,
        data: Buffer.alloc(REGION_BYTES, region + 1),
        blocks: null,
        version: { epoch: asEpoch(1), lsn: asLsn(1) },
        copiedAt: asLsn(0),
        token: FIRST_TOKEN + region,
      });

    // Up to the bound, with no checkpoint under way: each is acknowledged once installed.
    for (let g = 0; g < regionsPerCheckpoint; g++) install(g);
    await until("the first regions acknowledged", () => acked.length === regionsPerCheckpoint);
    // The driver's tick starts a checkpoint of them (held by the test).
    await until("a checkpoint started", () => checkpoints() === 1);
    // While it writes: regions below the bound are acknowledged, the one reaching it and all after it are not.
    for (let g = regionsPerCheckpoint; g < 2 * regionsPerCheckpoint + 2; g++) install(g);
    await new Promise((r) => setTimeout(r, 200));
    expect(acked.length).toBe(2 * regionsPerCheckpoint - 1);
    expect(checkpoints()).toBe(1);
    // The checkpoint ends: the held regions are acknowledged, and the next checkpoint starts at once.
    releases.shift()?.();
    await until("the held regions acknowledged", () => acked.length === 2 * regionsPerCheckpoint + 2);
    expect(acked).toEqual(Array.from({ length: 2 * regionsPerCheckpoint + 2 }, (_, g) => g));
    await until("the next checkpoint started", () => checkpoints() === 2);
    releases.shift()?.();
    // The last region installed reads back from the store.
    const last = await store.readBlocks((2 * regionsPerCheckpoint + 1) * limits.regionBlocks, limits.regionBlocks);
    expect(Buffer.from(last).every((b) => b === 2 * regionsPerCheckpoint + 2)).toBe(true);
  }, 30_000);
});

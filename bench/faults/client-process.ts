/**
 * One client process of the fault benchmark (spawned by run.ts through tsx).
 *
 *   node --import tsx bench/faults/client-process.ts
 *   (stdin) start <startNs> <endNs> <ClientProcessConfig as JSON>
 *
 * It takes the volume over read-write at the start of each of its slots
 * (slot k belongs to client k mod slots), through its `via` node first when
 * it has one, and while it holds the mount it issues reads and writes over
 * the hot blocks at a fixed queue depth (`readers` of its workers only
 * read), each write a fresh self-describing value (value.ts). When another client's
 * takeover fences it, it records the FENCED outcomes, closes, and waits for
 * its next slot. Every operation goes to its own JSON-lines history file
 * (history.ts), flushed every FLUSH_MS and at exit. Times are
 * process.hrtime.bigint(): CLOCK_MONOTONIC, shared by every process here.
 *
 * stdin lines from the runner: "start <startNs> <endNs> <config>"
 * (monotonic ns; the process is spawned early, loads its modules, prints
 * "ready" and does nothing before it), "bulk on" / "bulk off" (1 MiB writes of
 * filler over the bulk area while mounted, to push a replica past the
 * primary's retained log; not recorded: convergence checks those blocks),
 * "stop". stdout lines: "ready", "bulk-bytes N". SIGTERM = stop: in-flight
 * operations finish (bounded), the history is flushed, exit 0.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { connect, FencedError, VolumeError, type Cluster, type Volume } from "../../src/client/index.js";
import { classifyWriteError, serializeEvent, type HistoryEvent } from "./history.js";
import { decodeValue, encodeValue, type BlockValue } from "./value.js";

export interface ClientProcessConfig {
  readonly clusterFile: string;
  readonly volume: string;
  readonly process: string;
  readonly historyFile: string;
  readonly slotMs: number;
  readonly slotIndex: number;
  readonly slots: number;
  readonly hotBlocks: number;
  readonly depth: number;
  /** Fraction of operations that are writes. */
  readonly writeFraction: number;
  readonly bulkFirstBlock: number;
  readonly bulkBlocks: number;
  readonly blockSize: number;
  /** Pause between takeover attempts within a slot. */
  readonly mountRetryMs: number;
  /** The node this client mounts through first (MountOptions.via), or null for the replica set's order. */
  readonly via: string | null;
  /**
   * Workers (of `depth`) that only read. With readers, client k writes only
   * the hot blocks b with b mod slots = k, and its readers read only the
   * others' blocks: a read waits for the writes to its block, so a write of
   * its own waiting for a quorum never holds its readers up.
   */
  readonly readers: number;
}

const FLUSH_MS = 200;
/** After an error other than FENCED, a worker pauses this long (no hot loop while the volume has no quorum). */
const ERROR_PAUSE_MS = 100;
/** How long SIGTERM, or the end of the workload, waits for in-flight operations: then they are recorded as unknown. */
const DRAIN_MS = 1500;
const BULK_CHUNK_BYTES = 1024 * 1024;
/** Bulk writes in flight (only while the runner asks for them). */
const BULK_DEPTH = 4;

/** From the runner's "start" line: a process is spawned (and loads its modules) before its run is known. */
let config: ClientProcessConfig | null = null;
function cfg(): ClientProcessConfig {
  if (config === null) throw new Error("No start line yet");
  return config;
}
/** process.hrtime.bigint() values, from the runner's "start" line. */
let startNs = 0n;
let endNs = 0n;
let started: (() => void) | null = null;
const startLine = new Promise<void>((resolve) => {
  started = resolve;
});
const now = (): bigint => process.hrtime.bigint();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);

let pending: string[] = [];
function record(e: HistoryEvent): void {
  pending.push(serializeEvent(e));
}
function flush(): void {
  if (pending.length === 0) return;
  const text = pending.join("\n") + "\n";
  pending = [];
  appendFileSync(cfg().historyFile, text);
}
const flushTimer = setInterval(flush, FLUSH_MS);

let stopping = false;
let bulk = false;
let seq = 0;
let bulkNext = 0;
/** The current mount saw its `fenced` event: a write issued now is refused before it is sent. */
let fencedNow = false;
/** Operations invoked and not yet completed: recorded as unknown if the process must exit first. */
const inFlight = new Set<() => void>();

function codeOf(err: unknown): string {
  if (err instanceof VolumeError) return err.code;
  return "UNKNOWN";
}

function shouldRun(): boolean {
  return !stopping && now() < endNs;
}

async function writeOnce(vol: Volume, block: number): Promise<boolean> {
  const value: BlockValue = { block, writer: cfg().process, seq: ++seq, epoch: vol.epoch };
  const bytes = encodeValue(value, cfg().blockSize);
  const invokeNs = now();
  const mountEpoch = vol.epoch;
  const fencedBeforeInvoke = fencedNow;
  let done = false;
  const abandon = (): void => {
    if (done) return;
    done = true;
    record({ type: "write", process: cfg().process, block, value, invokeNs, completeNs: now(), outcome: "unknown", error: "PENDING_AT_EXIT", mountEpoch });
  };
  inFlight.add(abandon);
  try {
    await vol.write(block * cfg().blockSize, bytes);
    if (!done) record({ type: "write", process: cfg().process, block, value, invokeNs, completeNs: now(), outcome: "ok", mountEpoch });
    return true;
  } catch (err) {
    const code = codeOf(err);
    if (!done) record({ type: "write", process: cfg().process, block, value, invokeNs, completeNs: now(), outcome: classifyWriteError(code, { fencedBeforeInvoke }), error: code, mountEpoch });
    return false;
  } finally {
    done = true;
    inFlight.delete(abandon);
  }
}

async function readOnce(vol: Volume, block: number): Promise<boolean> {
  const invokeNs = now();
  const mountEpoch = vol.epoch;
  try {
    const bytes = await vol.read(block * cfg().blockSize, cfg().blockSize);
    record({ type: "read", process: cfg().process, block, invokeNs, completeNs: now(), outcome: "ok", read: decodeValue(bytes, block), mountEpoch });
    return true;
  } catch (err) {
    record({ type: "read", process: cfg().process, block, invokeNs, completeNs: now(), outcome: "failed", error: codeOf(err), mountEpoch });
    return false;
  }
}

async function runIo(vol: Volume): Promise<void> {
  let fenced = false;
  fencedNow = false;
  vol.on("fenced", () => {
    fenced = true;
    fencedNow = true;
  });
  // The library's own failovers are mounts too (history.ts): writes resent after one carry the newer epoch.
  vol.on("failover", (e) => {
    const completeNs = now();
    const invokeNs = completeNs - BigInt(Math.max(0, Math.round(e.pauseMs))) * 1_000_000n;
    record({ type: "mount", process: cfg().process, invokeNs, completeNs, outcome: "ok", epoch: e.epoch, takeover: false });
  });
  const c = cfg();
  const own = Array.from({ length: c.hotBlocks }, (_, b) => b).filter((b) => c.readers === 0 || b % c.slots === c.slotIndex);
  const others = Array.from({ length: c.hotBlocks }, (_, b) => b).filter((b) => !own.includes(b));
  const pick = (from: readonly number[]): number => from[Math.floor(Math.random() * from.length)] ?? 0;
  const worker = async (readsOnly: boolean): Promise<void> => {
    while (!fenced && shouldRun()) {
      const ok = readsOnly ? await readOnce(vol, pick(others)) : Math.random() < c.writeFraction ? await writeOnce(vol, pick(own)) : await readOnce(vol, pick(own));
      if (!ok && !fenced) await sleep(ERROR_PAUSE_MS);
    }
  };
  const filler = randomBytes(BULK_CHUNK_BYTES);
  const bulkWorker = async (): Promise<void> => {
    const chunkBlocks = BULK_CHUNK_BYTES / cfg().blockSize;
    while (!fenced && shouldRun()) {
      if (!bulk || cfg().bulkBlocks < chunkBlocks) {
        await sleep(50);
        continue;
      }
      const at = cfg().bulkFirstBlock + ((bulkNext * chunkBlocks) % cfg().bulkBlocks);
      bulkNext++;
      try {
        await vol.write(at * cfg().blockSize, filler);
        process.stdout.write(`bulk-bytes ${BULK_CHUNK_BYTES}\n`);
      } catch (err) {
        if (err instanceof FencedError) break;
        await sleep(ERROR_PAUSE_MS);
      }
    }
  };
  await Promise.all([...Array.from({ length: cfg().depth }, (_, i) => worker(i < cfg().readers)), ...Array.from({ length: BULK_DEPTH }, bulkWorker)]);
}

async function mountInSlot(cluster: Cluster, slotEndNs: bigint): Promise<Volume | null> {
  while (shouldRun()) {
    const invokeNs = now();
    let done = false;
    const abandon = (): void => {
      if (done) return;
      done = true;
      record({ type: "mount", process: cfg().process, invokeNs, completeNs: now(), outcome: "unknown", takeover: true, error: "PENDING_AT_EXIT" });
    };
    inFlight.add(abandon);
    try {
      const via = cfg().via;
      const vol = await cluster.mount(cfg().volume, { mode: "rw", takeover: true, ...(via === null ? {} : { via }) });
      if (!done) record({ type: "mount", process: cfg().process, invokeNs, completeNs: now(), outcome: "ok", epoch: vol.epoch, takeover: true });
      return vol;
    } catch (err) {
      const code = codeOf(err);
      // A mount that failed may still have promised its epoch at some replicas: it fenced whoever held the volume.
      if (!done) record({ type: "mount", process: cfg().process, invokeNs, completeNs: now(), outcome: code === "UNKNOWN" ? "unknown" : "failed", takeover: true, error: code });
    } finally {
      done = true;
      inFlight.delete(abandon);
    }
    if (now() >= slotEndNs) return null;
    await sleep(cfg().mountRetryMs);
  }
  return null;
}

async function main(): Promise<void> {
  process.stdout.write("ready\n");
  await startLine;
  if (config === null) return;
  const cluster = await connect({ cluster: cfg().clusterFile });
  // Operations still in flight at the end (a primary that is stuck) do not hold the run up.
  setTimeout(() => finish(0), Math.max(0, nsToMs(endNs - now())) + DRAIN_MS).unref();
  const slotNs = BigInt(cfg().slotMs) * 1_000_000n;
  try {
    let k = cfg().slotIndex;
    while (shouldRun()) {
      const slotStart = startNs + BigInt(k) * slotNs;
      await sleep(nsToMs(slotStart - now()));
      if (!shouldRun()) break;
      const vol = await mountInSlot(cluster, slotStart + slotNs);
      if (vol !== null) {
        await runIo(vol);
        await vol.close().catch(() => undefined);
      }
      // The next slot of ours that has not started yet.
      const elapsed = now() - startNs;
      const current = Number(elapsed / slotNs);
      k = current + 1;
      while (k % cfg().slots !== cfg().slotIndex) k++;
    }
  } finally {
    await cluster.close().catch(() => undefined);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const cmd = line.trim();
  const start = /^start (\d+) (\d+) (\{.*\})$/.exec(cmd);
  if (start !== null) {
    startNs = BigInt(start[1] ?? "0");
    endNs = BigInt(start[2] ?? "0");
    config = JSON.parse(start[3] ?? "{}") as ClientProcessConfig;
    started?.();
  } else if (cmd === "bulk on") bulk = true;
  else if (cmd === "bulk off") bulk = false;
  else if (cmd === "stop") stopping = true;
});
// The runner is gone: stop.
rl.on("close", () => {
  stopping = true;
  started?.();
});

function finish(code: number): never {
  for (const abandon of [...inFlight]) abandon();
  if (config !== null) flush();
  clearInterval(flushTimer);
  process.exit(code);
}

process.on("SIGTERM", () => {
  stopping = true;
  setTimeout(() => finish(0), DRAIN_MS).unref();
});

main().then(
  () => finish(0),
  (err: unknown) => {
    process.stderr.write(`client ${config?.process ?? "?"}: ${String(err instanceof Error ? err.stack : err)}\n`);
    finish(1);
  },
);

/**
 * Storage benchmark: the file ReplicaStore next to a plain Node baseline
 * measured in the same run on the same disk.
 *
 *   npm run bench:storage [-- --json] [--seconds 0.75] [--repeats 3]
 *
 * - durable 4 KiB appends/s at 1 and 32 writers, and 1 MiB appends (MB/s) at
 *   4 writers: appendLog of one record vs the baseline PlainGroupCommit
 *   (bench/storage-baseline.ts), group-committed exactly the way the store's
 *   log is. Precisely, the baseline:
 *     * per append, copies the payload once into a 1 MiB slab (records over
 *       256 KiB get a buffer of their own), as the store copies it once when
 *       it frames the record, and queues it;
 *     * starts a group on setImmediate after the first append that finds no
 *       flush under way (the store's trigger, kickLog), so the writers that
 *       the previous group released, which append again in that turn's
 *       microtasks, all join it;
 *     * writes a group with ONE writev at the end of the file (adjacent slab
 *       views joined: one iovec, two across a slab boundary), then ONE
 *       fdatasync, then resolves the group through ONE shared promise; if
 *       appends queued meanwhile, the next group starts at once, otherwise
 *       the next append schedules one on setImmediate again (as flushLog);
 *     * opens its file "w+" and grows it, as a log segment grows.
 *   What it leaves out is the store's own work, which the ratio measures:
 *   no frame header, no CRC-32, no validation or lsn checks, no per-record
 *   bookkeeping, one file where the store starts a new log segment every
 *   16 MiB (a file create and a directory sync, done ahead of need), and it
 *   keeps nothing after the write. The store holds the records of the first
 *   16 MiB of log past its applied point in memory (limits.
 *   logUnappliedHeldBytesMax; this benchmark never applies): past that it
 *   holds none, and its frame arena uses its slabs again, as the baseline's
 *   slabs are freed and allocated again.
 *   The store is free to make an append durable its own way as long as it is
 *   as durable (it writes its log O_DSYNC: one thread-pool hop a group where
 *   the baseline takes two, and small groups of a lone writer on the event
 *   loop); the baseline stays the plain writev + fdatasync loop.
 * - the median latency of one append with 1 writer (p50, us), both sides.
 * - checksummed 4 KiB random reads/s at 32 readers: readBlocks vs pread +
 *   CRC-32 of a file of the same size.
 *
 * bench/storage-profile.ts runs one side of the 32-writer row alone, for CPU
 * profiles and a split of each group's time into its CPU and I/O phases.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { asBlock, asClientId, asEpoch, asLsn, asNodeId, type LogRecord } from "../src/core/types.js";
import { crc32 } from "../src/storage/crc32.js";
import { openFileReplicaStore } from "../src/storage/data-dir.js";
import { PlainGroupCommit } from "./storage-baseline.js";
import type { DiskReplicaStore } from "../src/storage/disk-replica-store.js";

const BLOCK = 4096;
const VOLUME_BLOCKS = 1 << 16; // 256 MiB
const READ_SET_BLOCKS = 1 << 14; // 64 MiB

const json = process.argv.includes("--json");
const secondsArg = process.argv.indexOf("--seconds");
const seconds = secondsArg >= 0 ? Number(process.argv[secondsArg + 1]) : 0.75;
const repeatsArg = process.argv.indexOf("--repeats");
const repeats = repeatsArg >= 0 ? Number(process.argv[repeatsArg + 1]) : 3;
if (!(Number.isInteger(repeats) && repeats >= 1 && repeats <= 15)) throw new Error("--repeats takes an integer from 1 to 15");
if (!(seconds > 0 && seconds <= 60)) throw new Error("--seconds takes a number from 0 to 60");

interface Measure {
  readonly ops: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Median time of one op in microseconds, timed only with a single worker (null otherwise). */
  readonly p50Us: number | null;
}

function median(xs: number[]): number {
  return xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
}

/** Runs `workers` loops of `op` for the benchmark's duration; with one worker, times each op too. */
async function measure(workers: number, op: () => Promise<number>): Promise<Measure> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let ops = 0;
  let bytes = 0;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let t = performance.now(); t < end; ) {
        bytes += await op();
        ops++;
        const now = performance.now();
        if (workers === 1) latencies.push(now - t);
        t = now;
      }
    }),
  );
  return { ops, bytes, seconds: (performance.now() - start) / 1000, p50Us: workers === 1 ? Math.round(median(latencies) * 1000) : null };
}

async function baselineAppends(dir: string, workers: number, recordBytes: number): Promise<Measure> {
  // A new file per measurement, as the store gets a new data directory per measurement.
  const file = path.join(dir, `baseline-${workers}-${recordBytes}.log`);
  const handle = await fs.open(file, "w+");
  try {
    const log = new PlainGroupCommit(handle);
    const payload = randomBytes(recordBytes);
    return await measure(workers, async () => {
      await log.append(payload);
      return recordBytes;
    });
  } finally {
    await handle.close();
    await fs.rm(file, { force: true });
  }
}

let storesOpened = 0;

/** The data directory of the store opened last. */
function benchStoreDir(dir: string): string {
  return path.join(dir, `store-${storesOpened}`);
}

/** A fresh data directory per measurement, removed after it. */
async function openBenchStore(dir: string): Promise<DiskReplicaStore> {
  storesOpened++;
  return openFileReplicaStore(benchStoreDir(dir), "bench", {
    create: { name: "bench", blockSize: BLOCK, blockCount: VOLUME_BLOCKS, replicas: [asNodeId("n1")], configVersion: 1 },
  });
}

async function storeAppends(dir: string, workers: number, blocksPerRecord: number): Promise<Measure> {
  const store = await openBenchStore(dir);
  try {
    const data = randomBytes(blocksPerRecord * BLOCK);
    let next = 1;
    return await measure(workers, async () => {
      const lsn = next++;
      const record: LogRecord = {
        epoch: asEpoch(1),
        lsn: asLsn(lsn),
        kind: "write",
        block: asBlock((lsn * 7919) % (VOLUME_BLOCKS - blocksPerRecord)),
        blockCount: blocksPerRecord,
        data,
        clientId: asClientId("bench"),
        clientSeq: lsn,
      };
      await store.appendLog([record]);
      return data.length;
    });
  } finally {
    await store.close();
    await fs.rm(benchStoreDir(dir), { recursive: true, force: true });
  }
}

async function storeReads(dir: string, workers: number): Promise<Measure> {
  const store = await openBenchStore(dir);
  try {
    const chunk = 256;
    const data = randomBytes(chunk * BLOCK);
    const records: LogRecord[] = [];
    for (let i = 0; i < READ_SET_BLOCKS / chunk; i++) {
      records.push({ epoch: asEpoch(1), lsn: asLsn(i + 1), kind: "write", block: asBlock(i * chunk), blockCount: chunk, data, clientId: asClientId("bench"), clientSeq: i + 1 });
    }
    for (const r of records) await store.appendLog([r]);
    await store.applyThrough(asLsn(records.length));
    await store.checkpoint();
    let seed = 12345;
    return await measure(workers, async () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      await store.readBlocks(seed % READ_SET_BLOCKS, 1);
      return BLOCK;
    });
  } finally {
    await store.close();
    await fs.rm(benchStoreDir(dir), { recursive: true, force: true });
  }
}

async function baselineReads(dir: string, workers: number): Promise<Measure> {
  const file = path.join(dir, "baseline-reads.dat");
  await fs.writeFile(file, randomBytes(READ_SET_BLOCKS * BLOCK));
  const handle = await fs.open(file, "r");
  try {
    let seed = 12345;
    return await measure(workers, async () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const block = seed % READ_SET_BLOCKS;
      const buf = Buffer.alloc(BLOCK);
      await handle.read(buf, 0, BLOCK, block * BLOCK);
      crc32(buf);
      return BLOCK;
    });
  } finally {
    await handle.close();
  }
}

interface Row {
  readonly name: string;
  readonly unit: "ops/s" | "MB/s";
  readonly store: number;
  readonly baseline: number;
  readonly ratio: number;
  /** Median of the runs' median op latencies (rows with one worker only). */
  readonly storeP50Us?: number;
  readonly baselineP50Us?: number;
}

/**
 * Store and baseline run alternately, `repeats` times each, and each side
 * reports its median: the disk's speed drifts by tens of percent from second
 * to second here, and alternating lets the drift hit both alike.
 */
async function row(name: string, unit: Row["unit"], store: () => Promise<Measure>, baseline: () => Promise<Measure>): Promise<Row> {
  const rate = (m: Measure): number => (unit === "ops/s" ? m.ops / m.seconds : m.bytes / 1e6 / m.seconds);
  const s: number[] = [];
  const b: number[] = [];
  const sP50: number[] = [];
  const bP50: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const sm = await store();
    const bm = await baseline();
    s.push(rate(sm));
    b.push(rate(bm));
    if (sm.p50Us !== null) sP50.push(sm.p50Us);
    if (bm.p50Us !== null) bP50.push(bm.p50Us);
  }
  const latency = sP50.length > 0 && bP50.length > 0 ? { storeP50Us: median(sP50), baselineP50Us: median(bP50) } : {};
  return { name, unit, store: Math.round(median(s)), baseline: Math.round(median(b)), ratio: Number((median(s) / median(b)).toFixed(3)), ...latency };
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), "replivol-bench-storage-"));
try {
  const rows: Row[] = [];
  // Baseline and store alternate, so drift of the disk hits both alike.
  rows.push(await row("durable 4K appends, 1 writer", "ops/s", () => storeAppends(dir, 1, 1), () => baselineAppends(dir, 1, BLOCK)));
  rows.push(await row("durable 4K appends, 32 writers", "ops/s", () => storeAppends(dir, 32, 1), () => baselineAppends(dir, 32, BLOCK)));
  rows.push(await row("durable 1M appends, 4 writers", "MB/s", () => storeAppends(dir, 4, 256), () => baselineAppends(dir, 4, 256 * BLOCK)));
  rows.push(await row("checksummed 4K random reads, 32 readers", "ops/s", () => storeReads(dir, 32), () => baselineReads(dir, 32)));
  if (json) {
    console.log(JSON.stringify({ seconds, repeats, node: process.version, rows }, null, 2));
  } else {
    console.log(`replivol storage benchmark (${repeats} x ${seconds} s per side, medians, Node ${process.version}, ${dir})`);
    console.log(`${"".padEnd(42)}${"store".padStart(12)}${"baseline".padStart(12)}${"ratio".padStart(8)}`);
    for (const r of rows) {
      console.log(`${`${r.name} (${r.unit})`.padEnd(42)}${String(r.store).padStart(12)}${String(r.baseline).padStart(12)}${r.ratio.toFixed(2).padStart(8)}`);
      if (r.storeP50Us !== undefined && r.baselineP50Us !== undefined) {
        console.log(`${"  p50 latency (us)".padEnd(42)}${String(r.storeP50Us).padStart(12)}${String(r.baselineP50Us).padStart(12)}`);
      }
    }
  }
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}

/**
 * A focused look at one side of the "durable 4K appends, 32 writers" row of
 * bench/storage.ts, for CPU profiles and for splitting each group's time:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/storage-profile.ts [store|baseline] [seconds] [writers] [baseline record bytes]
 *
 * (A baseline of 4149-byte records, the size of the store's frames of 4 KiB
 * writes, shows what the frames' misalignment to pages costs the disk.)
 *
 * With every writer waiting on the group in flight, a group's cycle is
 * serial: an I/O phase (writev start to fdatasync return) and a CPU phase
 * (fdatasync return to the next writev start: resolving the writers, their
 * next appends, framing, the setImmediate). The disk here is shared with
 * other work and its speed swings several-fold from second to second, so the
 * CPU phase, which is the store's own cost, is the steadier figure to compare.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { asBlock, asClientId, asEpoch, asLsn, asNodeId, type LogRecord } from "../src/core/types.js";
import { DiskReplicaStore } from "../src/storage/disk-replica-store.js";
import { FileVolumeDisk } from "../src/storage/file-volume-disk.js";
import type { DiskFile, VolumeDisk } from "../src/storage/volume-disk.js";
import { PlainGroupCommit } from "./storage-baseline.js";

const side = process.argv[2] ?? "store";
const seconds = Number(process.argv[3] ?? 5);
const writers = Number(process.argv[4] ?? 32);
const baselineRecordBytes = Number(process.argv[5] ?? 4096);
const BLOCK = 4096;
const VOLUME_BLOCKS = 1 << 16;

/** Time of the I/O and the CPU phases of the groups (see the module comment). */
class Phases {
  private syncEnd = -1;
  private writeStart = 0;
  cpu: number[] = [];
  io: number[] = [];
  writeBegins(): void {
    this.writeStart = performance.now();
    if (this.syncEnd >= 0) this.cpu.push(this.writeStart - this.syncEnd);
  }
  syncEnds(): void {
    this.syncEnd = performance.now();
    this.io.push(this.syncEnd - this.writeStart);
  }
}
const phases = new Phases();

class TimedFile implements DiskFile {
  constructor(private readonly inner: DiskFile) {}
  get name(): string {
    return this.inner.name;
  }
  read(buf: Uint8Array, position: number): Promise<number> {
    return this.inner.read(buf, position);
  }
  get syncWrites(): boolean {
    return this.inner.syncWrites;
  }
  async writev(buffers: readonly Uint8Array[], position: number): Promise<void> {
    phases.writeBegins();
    await this.inner.writev(buffers, position);
    // On a syncWrites (O_DSYNC) file the write is the sync too.
    if (this.inner.syncWrites) phases.syncEnds();
  }
  writevSync(buffers: readonly Uint8Array[], position: number): void {
    phases.writeBegins();
    this.inner.writevSync(buffers, position);
    if (this.inner.syncWrites) phases.syncEnds();
  }
  async datasync(): Promise<void> {
    await this.inner.datasync();
    phases.syncEnds();
  }
  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Times the log segments' writes and syncs. */
class TimedLogDisk implements VolumeDisk {
  constructor(private readonly inner: VolumeDisk) {}
  async open(name: string, create: boolean, syncWrites = false): Promise<DiskFile | null> {
    const file = await this.inner.open(name, create, syncWrites);
    return file !== null && name.endsWith(".wal") ? new TimedFile(file) : file;
  }
  list(): Promise<string[]> {
    return this.inner.list();
  }
  unlink(name: string): Promise<void> {
    return this.inner.unlink(name);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  syncDir(): Promise<void> {
    return this.inner.syncDir();
  }
}

async function run(workers: number, op: () => Promise<void>): Promise<void> {
  let ops = 0;
  let gcMs = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gc.observe({ entryTypes: ["gc"] });
  const cpu0 = process.cpuUsage();
  const faults0 = process.resourceUsage().minorPageFault;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < end) {
        await op();
        ops++;
      }
    }),
  );
  const s = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const faults = process.resourceUsage().minorPageFault - faults0;
  gc.disconnect();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)] ?? 0;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const groups = phases.io.length;
  console.log(
    `${side}: ${Math.round(ops / s)} appends/s, ${(ops / groups).toFixed(1)} per group; ` +
      `median per group: CPU phase ${(median(phases.cpu) * 1000).toFixed(0)} us, I/O phase ${(median(phases.io) * 1000).toFixed(0)} us; ` +
      `mean: CPU ${(mean(phases.cpu) * 1000).toFixed(0)} us, I/O ${(mean(phases.io) * 1000).toFixed(0)} us; ` +
      `p99: CPU ${(quantile(phases.cpu, 0.99) * 1000).toFixed(0)} us, I/O ${(quantile(phases.io, 0.99) * 1000).toFixed(0)} us; ` +
      `process CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} us/append, ${(faults / ops).toFixed(2)} page faults/append, GC ${((gcMs / s) / 10).toFixed(1)}% of the time`,
  );
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), "replivol-bench-profile-"));
try {
  if (side === "store") {
    const store = await DiskReplicaStore.open(
      new TimedLogDisk(new FileVolumeDisk(dir)),
      "bench",
      { create: { name: "bench", blockSize: BLOCK, blockCount: VOLUME_BLOCKS, replicas: [asNodeId("n1")], configVersion: 1 } },
      () => Promise.resolve(),
    );
    const data = randomBytes(BLOCK);
    let next = 1;
    await run(writers, async () => {
      const lsn = next++;
      const record: LogRecord = {
        epoch: asEpoch(1),
        lsn: asLsn(lsn),
        kind: "write",
        block: asBlock((lsn * 7919) % (VOLUME_BLOCKS - 1)),
        blockCount: 1,
        data,
        clientId: asClientId("bench"),
        clientSeq: lsn,
      };
      await store.appendLog([record]);
    });
    await store.close();
  } else {
    const handle = await fs.open(path.join(dir, "baseline.log"), "w+");
    const timed: Pick<fs.FileHandle, "writev" | "datasync"> = {
      writev: <T extends readonly NodeJS.ArrayBufferView[]>(buffers: T, position?: number) => {
        phases.writeBegins();
        return handle.writev(buffers, position);
      },
      datasync: async () => {
        await handle.datasync();
        phases.syncEnds();
      },
    };
    const log = new PlainGroupCommit(timed);
    const payload = randomBytes(baselineRecordBytes);
    await run(writers, () => log.append(payload));
    await handle.close();
  }
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}

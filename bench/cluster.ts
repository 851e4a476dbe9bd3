/**
 * Cluster benchmark: a fresh local 3-node cluster (real volnode processes on
 * loopback) driven through the client library, next to the local limit
 * measured in the same run: the same workloads through this one Node
 * process on one file with the same durability (pwrite + fdatasync, group
 * committed: whatever is queued while one fdatasync runs goes in the next,
 * started on the next turn of the event loop).
 *
 *   npm run bench [-- --json] [--seconds 5] [--ramp 2] [--workloads randwrite-4k-qd1,...] [--tsx]
 *
 * The nodes run the compiled JavaScript of dist/ (`npm run bench` builds
 * first), as an installed replivol does; with --tsx they run src/ through
 * tsx, as the tests and npm start do (about 30 MiB more per node: tsx's
 * loader thread).
 *
 * Each workload first runs unmeasured for --ramp seconds (as fio's
 * ramp_time), on both targets alike: the JIT compiles the hot paths of
 * every process in its first seconds, and a short run would otherwise
 * measure that.
 *
 * Prints IOPS, MB/s, p50 and p99 latency per workload and target, and each
 * node's peak resident memory (VmHWM). Then the resync rows (skip them with
 * --no-resync): a replica is SIGKILLed while RESYNC_CHANGED_BYTES are
 * written (more than the primary's log retains, so it comes back by region
 * resync); its resync is timed unthrottled (MB/s of region bytes copied),
 * then again at the default rate while randwrite-4k-qd32 runs, next to
 * randwrite-4k-qd32 without a resync. Three nodes on one 2-core machine
 * share its disk and cores: these are not production figures.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { connect, type Volume } from "../src/client/index.js";
import { DEFAULT_RESYNC_BYTES_PER_SEC } from "../src/rpc/cluster-config.js";
import { resyncedFollower, startCluster, type FollowerStatus, type TestCluster } from "../test/integration/harness.js";

const BLOCK = 4096;
const VOLUME_BYTES = 256 * 1024 * 1024;

interface Workload {
  readonly name: string;
  readonly kind: "write" | "read";
  readonly pattern: "rand" | "seq";
  readonly bytes: number;
  readonly depth: number;
}

const WORKLOADS: readonly Workload[] = [
  { name: "randwrite-4k-qd1", kind: "write", pattern: "rand", bytes: BLOCK, depth: 1 },
  { name: "randwrite-4k-qd32", kind: "write", pattern: "rand", bytes: BLOCK, depth: 32 },
  { name: "randread-4k-qd32", kind: "read", pattern: "rand", bytes: BLOCK, depth: 32 },
  { name: "seqwrite-1m-qd8", kind: "write", pattern: "seq", bytes: 1024 * 1024, depth: 8 },
  { name: "seqread-1m-qd8", kind: "read", pattern: "seq", bytes: 1024 * 1024, depth: 8 },
];

interface Result {
  readonly workload: string;
  readonly target: "replivol" | "local";
  readonly iops: number;
  readonly mbps: number;
  readonly p50_us: number;
  readonly p99_us: number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const json = process.argv.includes("--json");
const seconds = Number(arg("--seconds") ?? "5");
if (!(seconds > 0 && seconds <= 120)) throw new Error("--seconds takes a number from 0 to 120");
const withResync = !process.argv.includes("--no-resync");
// The harness starts each volnode from dist/ with this set (see volnodeCommand).
if (!process.argv.includes("--tsx")) process.env["REPLIVOL_VOLNODE_BUILT"] = "1";
const rampSeconds = Number(arg("--ramp") ?? "2");
if (!(rampSeconds >= 0 && rampSeconds <= 60)) throw new Error("--ramp takes a number from 0 to 60");
const selected = arg("--workloads")?.split(",") ?? WORKLOADS.map((w) => w.name);
for (const name of selected) if (!WORKLOADS.some((w) => w.name === name)) throw new Error(`Unknown workload ${name}`);

/** Runs `depth` workers issuing `op(offset)` for `rampSeconds` unmeasured, then for `seconds`; latencies in µs. */
async function drive(w: Workload, op: (offset: number) => Promise<void>): Promise<Omit<Result, "workload" | "target">> {
  if (rampSeconds > 0) await run(w, op, rampSeconds);
  return run(w, op, seconds);
}

async function run(w: Workload, op: (offset: number) => Promise<void>, seconds: number): Promise<Omit<Result, "workload" | "target">> {
  const latencies: number[] = [];
  const slots = Math.floor(VOLUME_BYTES / w.bytes);
  let next = 0;
  let ops = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const slot = w.pattern === "seq" ? next++ % slots : Math.floor(Math.random() * slots);
      const t0 = performance.now();
      await op(slot * w.bytes);
      latencies.push((performance.now() - t0) * 1000);
      ops++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: w.depth }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
  return { iops: Math.round(ops / elapsed), mbps: Math.round((ops * w.bytes) / elapsed / 1e6), p50_us: pct(0.5), p99_us: pct(0.99) };
}

/** The local limit: one file, pwrite + fdatasync group-committed, pread for reads. */
class LocalFile {
  private queue: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private writes: Promise<unknown>[] = [];
  private running = false;

  constructor(private readonly handle: fs.FileHandle) {}

  async write(offset: number, data: Buffer): Promise<void> {
    const written = this.handle.write(data, 0, data.length, offset);
    this.writes.push(written);
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.sync());
      }
    });
  }

  private async sync(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue;
      const writes = this.writes;
      this.queue = [];
      this.writes = [];
      try {
        await Promise.all(writes);
        await this.handle.datasync();
        for (const g of group) g.resolve();
      } catch (err) {
        for (const g of group) g.reject(err);
      }
      await new Promise((r) => setImmediate(r));
    }
    this.running = false;
  }

  async read(offset: number, length: number): Promise<void> {
    const buf = Buffer.allocUnsafe(length);
    await this.handle.read(buf, 0, length, offset);
  }
}

/** Written while the replica is away: past twice the retained log, so the resync is by regions. */
const RESYNC_CHANGED_BYTES = 192 * 1024 * 1024;
const RESYNC_VOLUME_BYTES = 256 * 1024 * 1024;
const RESYNC_WAIT_MS = 120_000;

/** Kills `follower`, writes RESYNC_CHANGED_BYTES, restarts it; resolves once it is back (the caller measures meanwhile). */
async function awayAndBack(cluster: TestCluster, vol: Volume, follower: string): Promise<void> {
  await cluster.kill(follower, "SIGKILL");
  const chunk = randomBytes(1024 * 1024);
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < RESYNC_CHANGED_BYTES) {
      const at = next;
      next += chunk.length;
      await vol.write(at, chunk);
    }
  };
  await Promise.all(Array.from({ length: 8 }, writer));
  await cluster.restart(follower);
}

/** Waits until the primary reports `follower` in sync; its last resync's bytes and ms. */
async function waitInSync(cluster: TestCluster, primary: string, follower: string): Promise<{ bytes: number; ms: number }> {
  const f = await resyncedFollower(cluster, primary, follower, "resync", RESYNC_WAIT_MS, 50);
  return { bytes: f.lastResyncBytes, ms: f.lastResyncMs };
}

/** The resync rows, and the peak resident memory of the unthrottled resync's target (MiB). */
async function benchResync(cluster: TestCluster): Promise<{ rows: Result[]; targetRssMib: number }> {
  const rows: Result[] = [];
  let targetRssMib = 0;
  await cluster.createVolume("resync", RESYNC_VOLUME_BYTES / BLOCK);
  const client = await connect({ cluster: cluster.clusterFile });
  try {
    const vol = await client.mount("resync", { mode: "rw" });
    try {
      const primary = vol.primary;
      const follower = cluster.nodes.map((n) => n.id).find((id) => id !== primary) ?? "";
      const w = WORKLOADS.find((x) => x.name === "randwrite-4k-qd32");
      if (w === undefined) throw new Error("randwrite-4k-qd32 is gone");
      const data = randomBytes(BLOCK);
      const fg = (): Promise<Omit<Result, "workload" | "target">> => run(w, (offset) => vol.write(offset, data), seconds);

      await client.setResyncRate(null);
      await awayAndBack(cluster, vol, follower);
      const unthrottled = await waitInSync(cluster, primary, follower);
      const mbps = Math.round(unthrottled.bytes / (unthrottled.ms / 1000) / 1e6);
      rows.push({ workload: "resync-unthrottled", target: "replivol", iops: 0, mbps, p50_us: 0, p99_us: 0 });
      // The target started afresh for the resync: its peak is the resync's (and its restart's: an upper bound).
      targetRssMib = await peakRssMib(cluster.node(follower).pid);
      if (!json) console.error(`replivol resync unthrottled: ${unthrottled.bytes} bytes of regions in ${unthrottled.ms} ms, ${mbps} MB/s; the target's peak RSS ${targetRssMib} MiB`);

      const quiet = await fg();
      rows.push({ workload: "randwrite-4k-qd32-no-resync", target: "replivol", ...quiet });

      await client.setResyncRate(DEFAULT_RESYNC_BYTES_PER_SEC);
      await awayAndBack(cluster, vol, follower);
      const during = await fg();
      const s = await cluster.adminCall<{ followers: FollowerStatus[] }>(primary, "ReplicaStatus", { volume: "resync" });
      const stillResyncing = s.followers.find((x) => x.node === follower)?.resyncing === true;
      rows.push({ workload: "randwrite-4k-qd32-during-resync", target: "replivol", ...during });
      if (!json) {
        console.error(
          `replivol randwrite-4k-qd32 during a resync at ${DEFAULT_RESYNC_BYTES_PER_SEC / 1048576} MiB/s: ${during.iops} IOPS vs ${quiet.iops} without (${(during.iops / Math.max(1, quiet.iops)).toFixed(2)}×)${stillResyncing ? "" : " (the resync ended before the run did)"}`,
        );
      }
      await waitInSync(cluster, primary, follower);
    } finally {
      await vol.close();
    }
  } finally {
    await client.close();
  }
  return { rows, targetRssMib };
}

async function peakRssMib(pid: number | null): Promise<number> {
  if (pid === null) return 0;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m === null ? 0 : Math.round(Number(m[1]) / 1024);
}

async function main(): Promise<void> {
  const results: Result[] = [];
  const payload = (n: number): Buffer => randomBytes(n);
  const cluster = await startCluster({ nodes: 3 });
  let rss: Record<string, number> = {};
  let resyncTargetRssMib: number | null = null;
  try {
    const blockCount = VOLUME_BYTES / BLOCK;
    await cluster.createVolume("bench", blockCount);
    const client = await connect({ cluster: cluster.clusterFile });
    try {
      const vol: Volume = await client.mount("bench", { mode: "rw" });
      try {
        for (const w of WORKLOADS.filter((x) => selected.includes(x.name))) {
          const data = payload(w.bytes);
          if (w.kind === "read") {
            // Reads of written data: fill what the read pattern touches first (bounded).
            const fill = Math.min(VOLUME_BYTES, w.pattern === "seq" ? 64 * 1024 * 1024 : 32 * 1024 * 1024);
            const chunk = payload(1024 * 1024);
            for (let off = 0; off < fill; off += chunk.length) await vol.write(off, chunk);
          }
          const r = await drive(w, (offset) => (w.kind === "write" ? vol.write(offset, data) : vol.read(offset, w.bytes).then(() => undefined)));
          results.push({ workload: w.name, target: "replivol", ...r });
          if (!json) console.error(`replivol ${w.name}: ${r.iops} IOPS, ${r.mbps} MB/s, p50 ${r.p50_us} µs, p99 ${r.p99_us} µs`);
        }
      } finally {
        await vol.close();
      }
    } finally {
      await client.close();
    }
    rss = Object.fromEntries(await Promise.all(cluster.nodes.map(async (n) => [n.id, await peakRssMib(n.pid)] as const)));
    if (withResync) {
      const r = await benchResync(cluster);
      results.push(...r.rows);
      resyncTargetRssMib = r.targetRssMib;
    }
  } finally {
    await cluster.stop();
  }

  const dir = await fs.mkdtemp(path.join(process.env["TMPDIR"] ?? "/tmp", "replivol-bench-"));
  try {
    const handle = await fs.open(path.join(dir, "local.dat"), "w+");
    try {
      await handle.truncate(VOLUME_BYTES);
      const local = new LocalFile(handle);
      for (const w of WORKLOADS.filter((x) => selected.includes(x.name))) {
        const data = payload(w.bytes);
        if (w.kind === "read") {
          const chunk = payload(1024 * 1024);
          const fill = w.pattern === "seq" ? 64 * 1024 * 1024 : 32 * 1024 * 1024;
          for (let off = 0; off < fill; off += chunk.length) await local.write(off, chunk);
        }
        const r = await drive(w, (offset) => (w.kind === "write" ? local.write(offset, data) : local.read(offset, w.bytes)));
        results.push({ workload: w.name, target: "local", ...r });
        if (!json) console.error(`local    ${w.name}: ${r.iops} IOPS, ${r.mbps} MB/s, p50 ${r.p50_us} µs, p99 ${r.p99_us} µs`);
      }
    } finally {
      await handle.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }

  if (json) {
    console.log(JSON.stringify({ seconds, ramp_seconds: rampSeconds, results, rss_mib: rss, ...(resyncTargetRssMib === null ? {} : { resync_target_rss_mib: resyncTargetRssMib }) }));
  } else {
    console.log(`${"workload".padEnd(20)}${"target".padEnd(10)}${"IOPS".padStart(9)}${"MB/s".padStart(7)}${"p50 µs".padStart(9)}${"p99 µs".padStart(9)}`);
    for (const r of results) {
      console.log(`${r.workload.padEnd(20)}${r.target.padEnd(10)}${String(r.iops).padStart(9)}${String(r.mbps).padStart(7)}${String(r.p50_us).padStart(9)}${String(r.p99_us).padStart(9)}`);
    }
    console.log(`peak RSS (MiB): ${Object.entries(rss).map(([k, v]) => `${k} ${v}`).join(", ")}${resyncTargetRssMib === null ? "" : `; the resync target's ${resyncTargetRssMib}`}`);
  }
}

await main();

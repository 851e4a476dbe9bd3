/**
 * `npm run bench:faults`: replivol's promises checked on real processes.
 *
 *   npm run bench:faults -- --quick                  every scenario once, briefly (part of npm test)
 *   npm run bench:faults -- --runs 3 --scenario primary-kill,zombie-primary
 *   npm run bench:faults -- --quick --bug ack-before-quorum --scenario primary-cut-from-peers
 *   options: --json (rows as JSON on stdout), --out DIR (report directory,
 *   default bench/results), --no-report, --keep (keep each run's directory:
 *   histories, node logs), --parallel N (runs at once, each its own
 *   cluster; 2 with --quick, else 1), --partition stall|blackhole,
 *   --lossy reset|drop, --mount-retry-ms MS (see below)
 *
 * How a run goes (one fresh cluster per scenario run):
 * - Three volnode processes on loopback (cluster.ts), every link through a
 *   TCP fault proxy of this process: peer links per direction (n1→n2 is
 *   its own proxy), and client→node links. A 80 MiB volume of 4096-byte
 *   blocks: 64 hot blocks, 24 cold blocks (never written by the
 *   workload), and a 64 MiB bulk area for filler writes. A scenario may
 *   have the process "seed" write the cold blocks, the hot ones or both
 *   once before the workload (Scenario.seeds).
 * - Three client processes (client-process.ts, through tsx) take the volume
 *   over in turn: slot k of SLOT_MS (6 s quick, 8 s full) belongs to client k mod 3, which mounts
 *   read-write with takeover at its start, so the previous holder is fenced
 *   every slot. The holder reads and writes random hot blocks at queue depth
 *   4 (half writes), each write a fresh self-describing value (value.ts).
 *   A scenario may have client k mount through node k first (Scenario.clients.via:
 *   every handoff then moves the primary) and give each client readers
 *   (workers that only read the other clients' blocks; its writes then go to
 *   its own third of the hot set only).
 *   Every operation is recorded with invoke and complete times of
 *   CLOCK_MONOTONIC (process.hrtime.bigint(), shared by every process of
 *   the machine) and its outcome (history.ts). The library's own failovers
 *   are recorded as mounts without takeover.
 *   A client whose takeover failed tries again only after MOUNT_RETRY_MS
 *   (a lease and a second): retried every 300 ms, two clients' mounts kept
 *   fencing each other's mounts in progress (each waits out a lease) for
 *   whole slots (--mount-retry-ms 300 shows it).
 * - The scenario injects its faults meanwhile (scenarios.ts) and heals them.
 *   Each fault is recorded with its start and end. A partition holds the
 *   link's bytes (proxy "stall": TCP retransmits what a partition lost, so
 *   the stream resumes intact when it heals); --partition blackhole loses
 *   them instead, which leaves a gap in the byte stream. The lossy link
 *   stalls and resets connections (--lossy drop drops chunks: gaps again).
 *   With gaps, replivol's peer streams did not recover (see the report of
 *   issue 6), so the default is the model of a real network.
 * - After the workload: the network is healed, every node runs, a process
 *   "verify" mounts with takeover through the real addresses and reads
 *   every hot (and cold) block, after one write of its own (so a fault
 *   whose failover the workload's end cut short is still timed: up to that
 *   write). Then (if it mounted) the runner waits until the primary
 *   sees every follower consistent and caught up and every replica reports
 *   the same applied lsn (bounded by RESYNC_BOUND_MS: past it, the row
 *   fails; at once when a node has taken its replica out of service, which
 *   only a restart undoes), and compares the replicas' checksums (Admin.RegionChecksums,
 *   then Admin.BlockChecksums of any region that differs).
 * - checker.ts judges the history. A run passes when the checker finds
 *   nothing (0 lost or stale acks, 0 non-linearizable or undecodable reads,
 *   0 fenced writes acked or visible, 0 divergent blocks), the replicas
 *   converged within the bound, the workload acknowledged writes, every
 *   fault that hit the primary was followed by an acknowledged write within
 *   the client library's NO_QUORUM bound (failover time: from the fault to
 *   the first acknowledged write invoked after it), and the scenario's own
 *   criteria hold. The process exits 1 if any run failed.
 * - Report: DIR/faults-<YYYY-MM-DD>.md (a row per scenario) and one SVG
 *   timeline per scenario beside it (tools/faults-report.ts). "divergent
 *   blocks": RegionChecksums compares replicas region by region, and the
 *   regions that differ block by block (BlockChecksums; past
 *   DIVERGENT_REGIONS_BY_BLOCK_MAX regions, each further one counts as one).
 * - --bug NAME[,NAME] plants the simulator's bugs in every node
 *   (REPLIVOL_TEST_ONLY_BUGS); a run then should fail: `catches` in
 *   scenarios.ts lists the bugs each scenario is meant to catch.
 * - disk-enospc needs root (its data directories are small tmpfs mounts,
 *   filled up for a real ENOSPC; unmounted afterwards); without root its
 *   row says "skipped: needs root". disk-eio uses the test-only disk fault
 *   hook (REPLIVOL_TEST_ONLY_DISK_FAULTS).
 * - --netns (root): each volnode in its own network namespace, links cut
 *   with iptables DROP rules inside the namespaces instead of the proxies
 *   (netns.ts tells how). Scenarios that need delay or loss (tc netem is
 *   not available here) are skipped: their row says why (Scenario.netnsSkip).
 *
 * Every process and proxy started here is ended by PID whatever happens.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { Command, CommanderError } from "commander";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { connect, noQuorumBoundMs, type Volume } from "../../src/client/index.js";
import { limits } from "../../src/core/limits.js";
import { PLANTED_BUG_NAMES } from "../../src/core/replica.js";
import { renderJson, writeReport, type ScenarioRow } from "../../tools/faults-report.js";
import { checkHistory, type CheckResult, type ReplicaChecksums } from "./checker.js";
import { FaultCluster, ROOT, outOfServiceReason, trackChild, withTimeout } from "./cluster.js";
import { netnsUnavailable } from "./netns.js";
import type { ClientProcessConfig } from "./client-process.js";
import { classifyWriteError, parseHistory, serializeEvent, type HistoryEvent } from "./history.js";
import { decodeValue, encodeValue } from "./value.js";
import {
  BLOCK_SIZE,
  BULK_BLOCKS,
  BULK_FIRST,
  COLD_BLOCKS,
  COLD_FIRST,
  HOT_BLOCKS,
  RESYNC_BOUND_MS,
  SCENARIOS,
  VOLUME,
  VOLUME_BLOCKS,
  type ReplicaStatus,
  type Scenario,
  type ScenarioContext,
} from "./scenarios.js";

const CLIENT_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "client-process.ts");
const CLIENTS = 3;
const DEPTH = 4;
const WRITE_FRACTION = 0.5;
/** A handoff costs a lease wait (leaseMs) before the new mount acknowledges anything: slots are longer than that. */
const SLOT_MS_QUICK = 6000;
const SLOT_MS_FULL = 8000;
const CLIENT_READY_TIMEOUT_MS = 30_000;
/** Clients exit by themselves at the end of the workload; past this they are stopped. */
const CLIENT_EXIT_GRACE_MS = 8_000;
const VERIFY_MOUNT_TIMEOUT_MS = 40_000;
const PRIMARY_WAIT_MS = 15_000;
/**
 * A quick run runs two scenarios at once (two clusters): the faults' own
 * timeouts (leases, reply and mount timeouts) make most of its length, not
 * the CPU.
 */
export const QUICK_PARALLEL = 2;
/** Divergent regions compared block by block (BlockChecksums); past these, a region counts as one. */
const DIVERGENT_REGIONS_BY_BLOCK_MAX = 16;
/** The block of the final verification's write. */
const PROBE_BLOCK = COLD_FIRST + COLD_BLOCKS;
/** converge() gives up this long after it first saw a replica out of service (a status read racing a restart aside, it stays so). */
const OUT_OF_SERVICE_GRACE_MS = 2000;
/**
 * A client whose takeover failed tries again only after a lease and a
 * second: mount attempts of two clients every few hundred ms fence each
 * other's mounts in progress, each of which waits out a lease (see the
 * report's findings), so the volume can go without a primary for a whole
 * slot.
 */
const MOUNT_RETRY_MS = limits.leaseMs + 1000;

export interface FaultsOptions {
  readonly quick: boolean;
  readonly runs: number;
  readonly scenarios: readonly string[] | null;
  readonly bugs: readonly string[];
  readonly outDir: string | null;
  readonly keep: boolean;
  /** How peer links are cut: "stall" (bytes held, as TCP would retransmit them) or "blackhole" (bytes lost: the stream has a gap). */
  readonly partition?: "stall" | "blackhole";
  /** Scenario runs at once, each with its own cluster (default 1). */
  readonly parallel?: number;
  /** How a lossy link loses: "reset" (default) or "drop" (see scenarios.ts, slow-lossy-links). */
  readonly lossy?: "reset" | "drop";
  /** Pause between a client's takeover attempts within its slot (default MOUNT_RETRY_MS). */
  readonly mountRetryMs?: number;
  /** Progress lines (stderr by default). */
  readonly log?: (line: string) => void;
  /** --netns: nodes in network namespaces, links cut with iptables (root; netns.ts). */
  readonly netns?: boolean;
}

export interface RunResult {
  readonly scenario: string;
  readonly run: number;
  readonly passed: boolean;
  readonly failures: string[];
  readonly check: CheckResult | null;
  readonly faults: number;
  readonly failoverMs: number[];
  readonly resyncMs: number;
  readonly resyncBytes: number;
  readonly notes: string[];
  readonly events: HistoryEvent[];
  readonly startNs: bigint;
  readonly skipped: boolean;
}

export interface FaultsReport {
  readonly rows: ScenarioRow[];
  readonly runs: RunResult[];
  readonly passed: boolean;
  readonly markdownFile: string | null;
  readonly durationMs: number;
}

const nowNs = (): bigint => process.hrtime.bigint();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

interface ClientChild {
  name: string;
  readonly child: ChildProcess;
  historyFile: string;
  readonly exited: Promise<void>;
  stderr: string;
  onBulk: (bytes: number) => void;
}

interface WarmClient {
  readonly client: ClientChild;
  readonly ready: Promise<void>;
}

/**
 * A client process, spawned before its run is known: loading tsx, the
 * client library and gRPC takes seconds on this machine, so the next run's
 * clients start while the current one finishes. It does nothing until
 * startClient().
 */
function spawnClient(): WarmClient {
  const child = spawn(process.execPath, ["--import", "tsx", CLIENT_SCRIPT], { stdio: ["pipe", "pipe", "pipe"], cwd: ROOT, env: { ...process.env } });
  trackChild(child);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const client: ClientChild = { name: "?", child, historyFile: "", exited, stderr: "", onBulk: () => undefined };
  let partial = "";
  let onReady: (() => void) | null = null;
  let isReady = false;
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    partial += chunk;
    for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
      const line = partial.slice(0, nl).trim();
      partial = partial.slice(nl + 1);
      if (line === "ready") {
        isReady = true;
        onReady?.();
      }
      const m = /^bulk-bytes (\d+)$/.exec(line);
      if (m !== null) client.onBulk(Number(m[1]));
    }
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    client.stderr = (client.stderr + chunk).slice(-4000);
  });
  child.stdin?.on("error", () => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    if (isReady) resolve();
    void exited.then(() => reject(new Error(`a client process exited before it was ready: ${client.stderr}`)));
  });
  const timed = withTimeout(ready, CLIENT_READY_TIMEOUT_MS, "client process start");
  // A warm client nobody took is killed at the end: its readiness fails unobserved.
  timed.catch(() => undefined);
  return { client, ready: timed };
}

function startClient(c: ClientChild, name: string, index: number, dir: string, clusterFile: string, slotMs: number, mountRetryMs: number, s: Scenario, startNs: bigint, endNs: bigint): void {
  c.name = name;
  c.historyFile = path.join(dir, `history-${name}.jsonl`);
  const config: ClientProcessConfig = {
    clusterFile,
    volume: VOLUME,
    process: name,
    historyFile: c.historyFile,
    slotMs,
    slotIndex: index,
    slots: CLIENTS,
    hotBlocks: HOT_BLOCKS,
    depth: s.clients?.depth ?? DEPTH,
    writeFraction: WRITE_FRACTION,
    bulkFirstBlock: BULK_FIRST,
    bulkBlocks: BULK_BLOCKS,
    blockSize: BLOCK_SIZE,
    mountRetryMs,
    via: s.clients?.via?.[index] ?? null,
    readers: s.clients?.readers ?? 0,
  };
  tell(c, `start ${startNs} ${endNs} ${JSON.stringify(config)}`);
}

function tell(c: ClientChild, line: string): void {
  if (c.child.exitCode === null && c.child.signalCode === null && c.child.stdin?.writable === true) c.child.stdin.write(`${line}\n`);
}

async function endClient(c: ClientChild, graceMs: number): Promise<void> {
  try {
    await withTimeout(c.exited, graceMs, `client ${c.name} exit`);
    return;
  } catch {
    c.child.kill("SIGTERM");
  }
  try {
    await withTimeout(c.exited, 15_000, `client ${c.name} exit after SIGTERM`);
  } catch {
    c.child.kill("SIGKILL");
    await withTimeout(c.exited, 5_000, `client ${c.name} exit after SIGKILL`).catch(() => undefined);
  }
}

async function adminStatus(cluster: FaultCluster, node: string): Promise<ReplicaStatus | null> {
  if (!cluster.isUp(node)) return null;
  try {
    return await cluster.adminCall<ReplicaStatus>(node, "ReplicaStatus", { volume: VOLUME }, 3000);
  } catch {
    return null;
  }
}

/** The node whose replica coordinates a live mount (highest primary epoch), or null. */
async function findPrimary(cluster: FaultCluster): Promise<string | null> {
  let best: { node: string; epoch: number } | null = null;
  for (const id of cluster.ids()) {
    const s = await adminStatus(cluster, id);
    if (s === null || s.primaryEpoch === 0 || s.primaryEpoch < s.promisedEpoch) continue;
    if (best === null || s.primaryEpoch > best.epoch) best = { node: id, epoch: s.primaryEpoch };
  }
  return best?.node ?? null;
}

/** Nearest rank: the smallest value with at least p of the values at or below it. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

/** The blocks a scenario has the process "seed" write before the workload. */
function seededBlocks(s: Scenario): number[] {
  const out: number[] = [];
  if (s.seeds?.includes("hot") === true) for (let b = 0; b < HOT_BLOCKS; b++) out.push(b);
  if (s.seeds?.includes("cold") === true) for (let b = COLD_FIRST; b < COLD_FIRST + COLD_BLOCKS; b++) out.push(b);
  return out;
}

/** Writes `blocks` once each, as process "seed"; the events go into the history. */
async function seed(clusterFile: string, blocks: readonly number[], events: HistoryEvent[]): Promise<void> {
  const client = await connect({ cluster: clusterFile });
  try {
    const invokeNs = nowNs();
    const vol = await client.mount(VOLUME, { mode: "rw", takeover: true });
    events.push({ type: "mount", process: "seed", invokeNs, completeNs: nowNs(), outcome: "ok", epoch: vol.epoch, takeover: true });
    try {
      for (const b of blocks) {
        const value = { block: b, writer: "seed", seq: b, epoch: vol.epoch };
        const t0 = nowNs();
        await vol.write(b * BLOCK_SIZE, encodeValue(value, BLOCK_SIZE));
        events.push({ type: "write", process: "seed", block: b, value, invokeNs: t0, completeNs: nowNs(), outcome: "ok", mountEpoch: vol.epoch });
      }
    } finally {
      await vol.close();
    }
  } finally {
    await client.close();
  }
}

/** Mounts as "verify" through the real addresses and reads every checked block; returns the open volume (closed by the caller). */
async function verifyReads(clusterFile: string, blocks: readonly number[], events: HistoryEvent[]): Promise<{ close: () => Promise<void>; vol: Volume | null; failure: string | null }> {
  const client = await connect({ cluster: clusterFile });
  const until = Date.now() + VERIFY_MOUNT_TIMEOUT_MS;
  let vol: Volume | null = null;
  let lastError = "";
  while (vol === null && Date.now() < until) {
    const invokeNs = nowNs();
    try {
      vol = await client.mount(VOLUME, { mode: "rw", takeover: true });
      events.push({ type: "mount", process: "verify", invokeNs, completeNs: nowNs(), outcome: "ok", epoch: vol.epoch, takeover: true });
    } catch (err) {
      lastError = String(err);
      events.push({ type: "mount", process: "verify", invokeNs, completeNs: nowNs(), outcome: "failed", takeover: true, error: (err as { code?: string }).code ?? "UNKNOWN" });
      await sleep(500);
    }
  }
  const close = async (): Promise<void> => {
    await vol?.close().catch(() => undefined);
    await client.close().catch(() => undefined);
  };
  if (vol === null) return { close, vol, failure: `the final verification could not mount within ${VERIFY_MOUNT_TIMEOUT_MS} ms: ${lastError}` };
  let failure: string | null = null;
  // One write first: it shows the volume takes writes again after the faults (and bounds the
  // failover time of a fault that the workload's end cut short).
  // Its own block (no client writes it), so that it hides no lost write of the hot set.
  const probe = { block: PROBE_BLOCK, writer: "verify", seq: 1, epoch: vol.epoch };
  const probeAt = nowNs();
  try {
    await vol.write(PROBE_BLOCK * BLOCK_SIZE, encodeValue(probe, BLOCK_SIZE));
    events.push({ type: "write", process: "verify", block: PROBE_BLOCK, value: probe, invokeNs: probeAt, completeNs: nowNs(), outcome: "ok", mountEpoch: vol.epoch });
  } catch (err) {
    const code = (err as { code?: string }).code ?? "UNKNOWN";
    events.push({ type: "write", process: "verify", block: PROBE_BLOCK, value: probe, invokeNs: probeAt, completeNs: nowNs(), outcome: classifyWriteError(code), error: code, mountEpoch: vol.epoch });
    failure = `the final verification's write failed: ${String(err)}`;
  }
  for (const b of blocks) {
    const invokeNs = nowNs();
    try {
      const bytes = await vol.read(b * BLOCK_SIZE, BLOCK_SIZE);
      events.push({ type: "read", process: "verify", block: b, invokeNs, completeNs: nowNs(), outcome: "ok", read: decodeValue(bytes, b), mountEpoch: vol.epoch });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "UNKNOWN";
      events.push({ type: "read", process: "verify", block: b, invokeNs, completeNs: nowNs(), outcome: "failed", error: code, mountEpoch: vol.epoch });
      failure ??= `the final read of block ${b} failed: ${String(err)}`;
    }
  }
  return { close, vol, failure };
}

/** "n2 out of service: <why>" for each node that took its replica out of service. */
async function outOfService(cluster: FaultCluster): Promise<string[]> {
  const out: string[] = [];
  for (const id of cluster.ids()) {
    if ((await adminStatus(cluster, id))?.diskFailed === true) out.push(`${id} out of service: ${outOfServiceReason(cluster.node(id)) ?? "no reason logged"}`);
  }
  return out;
}

/**
 * Waits until every replica is consistent, caught up and applied to the same
 * lsn; then their region checksums. Gives up at once (after a short grace)
 * when a node has taken its replica out of service: only a restart brings
 * that back, so waiting out the bound would only delay the report.
 */
async function converge(cluster: FaultCluster, primaryHint: string | null): Promise<{ checksums: ReplicaChecksums[] | null; waitedMs: number; resyncMs: number; resyncBytes: number; why: string }> {
  const t0 = Date.now();
  let why = "no primary";
  let resyncMs = 0;
  let resyncBytes = 0;
  let outSince: number | null = null;
  while (Date.now() - t0 < RESYNC_BOUND_MS) {
    const out = await outOfService(cluster);
    if (out.length === 0) outSince = null;
    else if (outSince === null) outSince = Date.now();
    else if (Date.now() - outSince >= OUT_OF_SERVICE_GRACE_MS) return { checksums: null, waitedMs: Date.now() - t0, resyncMs, resyncBytes, why: out.join("; ") };
    const primary = primaryHint ?? (await findPrimary(cluster));
    const ps = primary === null ? null : await adminStatus(cluster, primary);
    if (ps === null || primary === null) {
      why = "no primary answers";
      await sleep(200);
      continue;
    }
    for (const f of ps.followers) {
      resyncMs = Math.max(resyncMs, f.lastResyncMs);
      resyncBytes = Math.max(resyncBytes, f.lastResyncBytes);
    }
    const lagging = cluster.ids().filter((id) => {
      if (id === primary) return false;
      const f = ps.followers.find((x) => x.node === id);
      return f === undefined || !f.consistent || f.resyncing || f.matchLsn < ps.commitLsn;
    });
    if (lagging.length > 0 || ps.diskFailed) {
      why = `${lagging.join(",")} not in sync (primary ${primary}, commit ${ps.commitLsn})`;
      await sleep(200);
      continue;
    }
    const sums = await Promise.all(
      cluster.ids().map(async (id) => {
        try {
          return { id, r: await cluster.adminCall<{ appliedLsn: number; stable: boolean; digests: number[] }>(id, "RegionChecksums", { volume: VOLUME }, 10_000) };
        } catch (err) {
          return { id, r: null, err: String(err) };
        }
      }),
    );
    const applied = new Set(sums.map((s) => (s.r === null ? -1 : s.r.appliedLsn)));
    if (sums.some((s) => s.r === null || !s.r.stable) || applied.size !== 1) {
      why = `replicas applied ${sums.map((s) => `${s.id}:${s.r?.appliedLsn ?? "?"}`).join(" ")}`;
      await sleep(200);
      continue;
    }
    const appliedLsn = sums[0]?.r?.appliedLsn ?? -1;
    // Regions whose digests differ: every replica's block checksums of them, at the same applied point.
    const digestsOf = (i: number): number[] => sums[i]?.r?.digests ?? [];
    const regions = Math.max(...sums.map((_, i) => digestsOf(i).length));
    const odd = Array.from({ length: regions }, (_, g) => g).filter((g) => new Set(sums.map((_, i) => digestsOf(i)[g])).size > 1);
    const blocks = await Promise.all(
      cluster.ids().map(async (id) => {
        const out: { region: number; block: number; checksum: number }[] = [];
        for (const region of odd.slice(0, DIVERGENT_REGIONS_BY_BLOCK_MAX)) {
          try {
            const r = await cluster.adminCall<{ appliedLsn: number; stable: boolean; firstBlock: number; checksums: number[] }>(id, "BlockChecksums", { volume: VOLUME, region }, 10_000);
            if (!r.stable || r.appliedLsn !== appliedLsn) return null;
            out.push(...r.checksums.map((checksum, i) => ({ region, block: r.firstBlock + i, checksum })));
          } catch {
            // That region is compared by its digests only.
          }
        }
        return out;
      }),
    );
    if (blocks.some((b) => b === null)) {
      why = "a replica applied records while its block checksums were read";
      await sleep(200);
      continue;
    }
    const checksums = sums.map((s, i) => ({ node: s.id, regions: digestsOf(i).map((checksum, region) => ({ region, checksum })), blocks: blocks[i] ?? [] }));
    return { checksums, waitedMs: Date.now() - t0, resyncMs, resyncBytes, why: "" };
  }
  return { checksums: null, waitedMs: Date.now() - t0, resyncMs, resyncBytes, why };
}

/** Warm client processes for the next run. */
class ClientPool {
  private warm: WarmClient[] = [];
  fill(): void {
    while (this.warm.length < CLIENTS) this.warm.push(spawnClient());
  }
  take(): WarmClient[] {
    this.fill();
    return this.warm.splice(0, CLIENTS);
  }
  async close(): Promise<void> {
    const all = this.warm.splice(0);
    for (const w of all) w.client.child.kill("SIGKILL");
    await Promise.all(all.map((w) => withTimeout(w.client.exited, 5000, "client exit").catch(() => undefined)));
  }
}

async function runScenario(s: Scenario, runIndex: number, opts: FaultsOptions, workRoot: string, pool: ClientPool, more: () => boolean): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const dir = await mkdtemp(path.join(workRoot, `${s.name}-${runIndex}-`));
  const quick = opts.quick;
  const workloadMs = s.workloadMs(quick);
  const slotMs = s.slotMs?.(quick) ?? (quick ? SLOT_MS_QUICK : SLOT_MS_FULL);
  const notes: string[] = [];
  const failures: string[] = [];
  const events: HistoryEvent[] = [];
  const faultEvents: HistoryEvent[] = [];
  const primaryFaults: bigint[] = [];
  const facts: Record<string, number | string | boolean> = {};
  const mounts: string[] = [];
  let bulkBytes = 0;
  let startNs = nowNs();
  let cluster: FaultCluster | null = null;
  /** --netns: the newest fault (see onNetnsCut). */
  let openFault: { e: HistoryEvent; primaryIndex: number } | null = null;
  const clients: ClientChild[] = [];
  const env: Record<string, string> = {};
  if (opts.bugs.length > 0) env["REPLIVOL_TEST_ONLY_BUGS"] = opts.bugs.join(",");
  const nodeEnv: Record<string, Record<string, string>> = {};
  const dataDirs: Record<string, string> = {};
  const control = (id: string): string => path.join(dir, `disk-faults-${id}`);
  const phases: string[] = [];
  const resyncSeen = { ms: 0, bytes: 0 };
  let samplerStopped = false;
  let sampler: Promise<void> = Promise.resolve();
  let phaseAt = Date.now();
  const phase = (name: string): void => {
    const t = Date.now();
    phases.push(`${name} ${((t - phaseAt) / 1000).toFixed(1)} s`);
    phaseAt = t;
  };
  try {
    for (const id of ["n1", "n2", "n3"]) {
      if (s.diskHook === true) {
        await writeFile(control(id), "");
        nodeEnv[id] = { REPLIVOL_TEST_ONLY_DISK_FAULTS: control(id) };
      }
      if (s.tmpfsMiB !== undefined) {
        const d = path.join(dir, `tmpfs-${id}`);
        await mkdir(d, { recursive: true });
        execFileSync("mount", ["-t", "tmpfs", "-o", `size=${s.tmpfsMiB}m`, "tmpfs", d]);
        mounts.push(d);
        dataDirs[id] = d;
      }
    }
    const spawned = pool.take();
    for (const sp of spawned) {
      clients.push(sp.client);
      sp.client.onBulk = (b) => (bulkBytes += b);
    }
    // --netns: a fault starts when its iptables rules are in place, not when the scenario announced it
    // (exec's take tens of ms, in which the old primary still acknowledges writes).
    const onNetnsCut = (): void => {
      const f = openFault;
      if (f === null || f.e.type !== "fault" || f.e.endNs !== undefined) return;
      f.e.atNs = nowNs();
      if (f.primaryIndex >= 0) primaryFaults[f.primaryIndex] = f.e.atNs;
    };
    const c = await FaultCluster.start({ dir, nodes: 3, env, nodeEnv, dataDirs, seed: runIndex + 1, ...(opts.netns === true ? { netns: true, onNetnsCut } : {}) });
    cluster = c;
    await c.createVolume(VOLUME, VOLUME_BLOCKS);
    await Promise.all(spawned.map((sp) => sp.ready));
    const seeded = seededBlocks(s);
    if (seeded.length > 0) await seed(c.adminFile, seeded, events);

    const ctx: ScenarioContext = {
      cluster: c,
      quick,
      workloadMs,
      slotMs,
      dir,
      at: (ms) => sleep(Number(startNs + BigInt(Math.round(ms)) * 1_000_000n - nowNs()) / 1e6),
      elapsedMs: () => Number(nowNs() - startNs) / 1e6,
      sleep,
      fault(name, detail, hitsPrimary = false) {
        const atNs = nowNs();
        if (hitsPrimary) primaryFaults.push(atNs);
        log(`  ${s.name}: fault ${name}: ${detail}`);
        const e: HistoryEvent = { type: "fault", name, detail, atNs };
        faultEvents.push(e);
        openFault = { e, primaryIndex: hitsPrimary ? primaryFaults.length - 1 : -1 };
        return {
          end() {
            if (e.type === "fault" && e.endNs === undefined) e.endNs = nowNs();
          },
        };
      },
      async primary() {
        const until = Date.now() + PRIMARY_WAIT_MS;
        while (Date.now() < until) {
          const p = await findPrimary(c);
          if (p !== null) return p;
          await sleep(100);
        }
        throw new Error(`No primary within ${PRIMARY_WAIT_MS} ms`);
      },
      followers: (p) => c.ids().filter((id) => id !== p),
      status: (node) => adminStatus(c, node),
      bulk(on) {
        for (const cl of clients) tell(cl, on ? "bulk on" : "bulk off");
      },
      bulkBytes: () => bulkBytes,
      diskFaultControl: control,
      partition: { kind: opts.partition ?? "stall" },
      lossy: opts.lossy ?? "reset",
      note: (t) => notes.push(t),
      facts,
    };
    await s.prepare?.(ctx);
    phase("start");
    // Resync figures: the primary's view of each follower's last region resync, sampled all along
    // (a primary that crashes takes its figures with it).
    const sampleResync = async (): Promise<void> => {
      while (!samplerStopped) {
        for (const id of c.ids()) {
          const st = await adminStatus(c, id);
          for (const f of st?.followers ?? []) {
            if (f.lastResyncBytes > 0) {
              resyncSeen.ms = Math.max(resyncSeen.ms, f.lastResyncMs);
              resyncSeen.bytes = Math.max(resyncSeen.bytes, f.lastResyncBytes);
            }
          }
        }
        await sleep(500);
      }
    };
    sampler = sampleResync();

    startNs = nowNs() + 200_000_000n;
    const endNs = startNs + BigInt(workloadMs) * 1_000_000n;
    for (const [i, cl] of clients.entries()) startClient(cl, `c${i + 1}`, i, dir, c.clientFile, slotMs, opts.mountRetryMs ?? MOUNT_RETRY_MS, s, startNs, endNs);
    log(`${s.name} #${runIndex + 1}: workload ${workloadMs} ms`);
    const injectError = await s.inject(ctx).then(
      () => null,
      (err: unknown) => (err instanceof Error ? err.message : JSON.stringify(err)),
    );
    if (injectError !== null) failures.push(`the scenario's fault injection failed: ${injectError}`);
    await Promise.all(clients.map((cl) => endClient(cl, Math.max(0, Number(endNs - nowNs()) / 1e6) + CLIENT_EXIT_GRACE_MS)));

    phase("workload");
    if (more()) pool.fill();
    // Heal: network back, every node running.
    c.healNetwork();
    for (const id of c.ids()) {
      c.resume(id);
      if (!c.isUp(id)) await c.restart(id);
    }
    for (const cl of clients) {
      try {
        events.push(...parseHistory(await readFile(cl.historyFile, "utf8")));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") failures.push(`history of ${cl.name} unreadable: ${String(err)}`);
      }
      if (cl.child.exitCode !== 0) notes.push(`client ${cl.name} exit ${cl.child.exitCode ?? cl.child.signalCode}: ${cl.stderr.slice(-300)}`);
    }

    const checked = [...Array.from({ length: HOT_BLOCKS }, (_, b) => b), ...(s.seeds?.includes("cold") === true ? Array.from({ length: COLD_BLOCKS }, (_, i) => COLD_FIRST + i) : [])];
    const verify = await verifyReads(c.adminFile, checked, events);
    phase("verify");
    let conv: Awaited<ReturnType<typeof converge>>;
    try {
      // A mount that found too few replicas to promise: say which ones are out of service, and why.
      if (verify.failure !== null) failures.push([verify.failure, ...(verify.vol === null ? await outOfService(c) : [])].join("; "));
      // No mount within its bound: the run has failed; waiting out the convergence bound too would only delay the report.
      conv = verify.vol === null ? { checksums: null, waitedMs: 0, resyncMs: 0, resyncBytes: 0, why: "not compared: the final verification could not mount" } : await converge(c, verify.vol.primary);
    } finally {
      await verify.close();
    }
    phase("converge");
    samplerStopped = true;
    await sampler;
    if (conv.resyncBytes > 0) {
      resyncSeen.ms = Math.max(resyncSeen.ms, conv.resyncMs);
      resyncSeen.bytes = Math.max(resyncSeen.bytes, conv.resyncBytes);
    }
    if (conv.checksums === null && verify.vol !== null) failures.push(`replicas not in sync after healing (bound ${RESYNC_BOUND_MS} ms, waited ${Math.round(conv.waitedMs)} ms): ${conv.why}`);
    const extra = s.check === undefined ? [] : await s.check(ctx);
    failures.push(...extra);
    for (const e of c.selfExits) if (!failures.includes(e)) failures.push(e);

    const all = [...events, ...faultEvents];
    const check = checkHistory(conv.checksums === null ? { events: all } : { events: all, finalChecksums: conv.checksums });
    if (!check.ok) {
      const kinds = new Map<string, number>();
      for (const v of check.violations) kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
      failures.push(`checker: ${check.violations.slice(0, 3).map((v) => v.message).join("; ")}`);
    }
    if (check.writesAcked === 0) failures.push("no write was acknowledged");
    const failoverMs: number[] = [];
    for (const at of primaryFaults) {
      let first: bigint | null = null;
      for (const e of events) {
        if (e.type === "write" && e.outcome === "ok" && e.invokeNs >= at && (first === null || e.completeNs < first)) first = e.completeNs;
      }
      if (first === null) failures.push(`no write was acknowledged after the fault at +${Math.round(Number(at - startNs) / 1e6)} ms`);
      else failoverMs.push(Number(first - at) / 1e6);
    }
    const worst = Math.max(0, ...failoverMs);
    if (worst > noQuorumBoundMs) failures.push(`failover took ${Math.round(worst)} ms, more than the ${noQuorumBoundMs} ms bound`);
    const passed = failures.length === 0;
    log(`${s.name} #${runIndex + 1}: ${passed ? "passed" : `FAILED: ${failures.join(" | ")}`} (${check.operations} ops, ${check.writesAcked} writes acked; ${phases.join(", ")})`);
    if (!passed || opts.keep) {
      await writeFile(path.join(dir, "history-all.jsonl"), all.map(serializeEvent).join("\n") + "\n").catch(() => undefined);
    }
    return { scenario: s.name, run: runIndex, passed, failures, check, faults: faultEvents.length, failoverMs, resyncMs: resyncSeen.ms, resyncBytes: resyncSeen.bytes, notes, events: all, startNs, skipped: false };
  } catch (err) {
    failures.push(`the run broke: ${err instanceof Error ? err.message : String(err)}`);
    // Often why it broke.
    if (cluster !== null) for (const e of cluster.selfExits) if (!failures.includes(e)) failures.push(e);
    log(`${s.name} #${runIndex + 1}: FAILED: ${failures.join(" | ")}`);
    return { scenario: s.name, run: runIndex, passed: false, failures, check: null, faults: faultEvents.length, failoverMs: [], resyncMs: 0, resyncBytes: 0, notes, events: [...events, ...faultEvents], startNs, skipped: false };
  } finally {
    samplerStopped = true;
    await sampler.catch(() => undefined);
    for (const cl of clients) {
      if (cl.child.exitCode === null && cl.child.signalCode === null) cl.child.kill("SIGKILL");
    }
    await Promise.all(clients.map((cl) => withTimeout(cl.exited, 5000, "client exit").catch(() => undefined)));
    if (cluster !== null) {
      if (opts.keep) {
        for (const n of cluster.nodes) await writeFile(path.join(dir, `${n.id}.log`), n.lines.join("\n") + `\n${n.stderr}`).catch(() => undefined);
      }
      await cluster.close();
    }
    for (const m of mounts) {
      try {
        execFileSync("umount", [m]);
      } catch (err) {
        log(`  could not unmount ${m}: ${String(err)}`);
      }
    }
    if (!opts.keep) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    else log(`  kept ${dir}`);
  }
}

function rowOf(s: Scenario, runs: readonly RunResult[]): ScenarioRow {
  const sum = (f: (c: CheckResult) => number): number => runs.reduce((a, r) => a + (r.check === null ? 0 : f(r.check)), 0);
  const failover = runs.flatMap((r) => r.failoverMs).sort((a, b) => a - b);
  const notes = [...new Set(runs.flatMap((r) => [...r.failures, ...r.notes]))];
  const resyncRuns = runs.filter((r) => r.resyncBytes > 0);
  return {
    scenario: s.name,
    criterion: s.criterion,
    passed: runs.every((r) => r.passed),
    runs: runs.filter((r) => !r.skipped).length,
    operations: sum((c) => c.operations),
    faults: runs.reduce((a, r) => a + r.faults, 0),
    lostAcks: sum((c) => c.lostAcks),
    staleAcks: sum((c) => c.staleAcks),
    nonLinearizableReads: sum((c) => c.nonLinearizableReads),
    undecodableReads: sum((c) => c.undecodableReads),
    divergentBlocks: sum((c) => c.divergentBlocks),
    fencedWritesAcked: sum((c) => c.fencedWritesAcked),
    fencedWritesVisible: sum((c) => c.fencedWritesVisible),
    failoverMsP50: failover.length === 0 ? null : Math.round(percentile(failover, 0.5)),
    failoverMsP99: failover.length === 0 ? null : Math.round(percentile(failover, 0.99)),
    resyncMs: resyncRuns.length === 0 ? null : Math.max(...resyncRuns.map((r) => r.resyncMs)),
    resyncBytes: resyncRuns.length === 0 ? null : Math.max(...resyncRuns.map((r) => r.resyncBytes)),
    ...(notes.length === 0 ? {} : { notes: notes.join("; ").slice(0, 600) }),
  };
}

export async function runFaults(opts: FaultsOptions): Promise<FaultsReport> {
  const t0 = Date.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  for (const b of opts.bugs) if (!(b in PLANTED_BUG_NAMES)) throw new Error(`Unknown bug ${b}: known are ${Object.keys(PLANTED_BUG_NAMES).join(", ")}`);
  const selected = opts.scenarios === null ? SCENARIOS : opts.scenarios.map((n) => SCENARIOS.find((s) => s.name === n) ?? fail(`Unknown scenario ${n}: known are ${SCENARIOS.map((s) => s.name).join(", ")}`));
  // --netns: the reason a scenario does not run in namespaces, or null.
  const netnsSkip = (s: Scenario): string | null => (opts.netns === true && s.netnsSkip !== undefined ? `skipped in --netns: ${s.netnsSkip}` : null);
  if (opts.netns === true) {
    const why = netnsUnavailable();
    if (why !== null) throw new Error(why);
  }
  const workRoot = await mkdtemp(path.join(tmpdir(), "replivol-faults-"));
  const runs: RunResult[] = [];
  const rows: ScenarioRow[] = [];
  const pool = new ClientPool();
  try {
    // Runs go to `parallel` workers (each its own cluster and clients), longest first; rows keep the scenarios' order.
    const jobs: { s: Scenario; i: number }[] = [];
    for (const s of selected) if (!(s.needsRoot === true && !isRoot()) && netnsSkip(s) === null) for (let i = 0; i < opts.runs; i++) jobs.push({ s, i });
    jobs.sort((a, b) => b.s.workloadMs(opts.quick) - a.s.workloadMs(opts.quick));
    const results = new Map<string, RunResult[]>();
    let bulkRunning = false;
    /** The longest job left, but never a second bulk job while one runs. */
    const nextJob = (): { s: Scenario; i: number } | undefined => {
      const at = jobs.findIndex((j) => !(bulkRunning && j.s.bulk === true));
      return at < 0 ? undefined : jobs.splice(at, 1)[0];
    };
    const worker = async (): Promise<void> => {
      for (let job = nextJob(); job !== undefined; job = nextJob()) {
        const bulk = job.s.bulk === true;
        if (bulk) bulkRunning = true;
        try {
          const r = await runScenario(job.s, job.i, opts, workRoot, pool, () => jobs.length > 0);
          results.set(job.s.name, [...(results.get(job.s.name) ?? []), r]);
        } finally {
          if (bulk) bulkRunning = false;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.parallel ?? 1) }, worker));
    for (const s of selected) {
      const mine =
        s.needsRoot === true && !isRoot()
          ? [{ scenario: s.name, run: 0, passed: true, failures: [], check: null, faults: 0, failoverMs: [], resyncMs: 0, resyncBytes: 0, notes: ["skipped: needs root (tmpfs for a real ENOSPC)"], events: [], startNs: 0n, skipped: true }]
          : netnsSkip(s) !== null
            ? [{ scenario: s.name, run: 0, passed: true, failures: [], check: null, faults: 0, failoverMs: [], resyncMs: 0, resyncBytes: 0, notes: [netnsSkip(s) ?? ""], events: [], startNs: 0n, skipped: true }]
            : (results.get(s.name) ?? []).sort((a, b) => a.run - b.run);
      runs.push(...mine);
      rows.push(rowOf(s, mine));
    }
  } finally {
    await pool.close();
    if (!opts.keep) await rm(workRoot, { recursive: true, force: true }).catch(() => undefined);
  }
  let markdownFile: string | null = null;
  if (opts.outDir !== null) {
    const date = new Date().toISOString().slice(0, 10);
    const timelines = selected.flatMap((s) => {
      const r = runs.find((x) => x.scenario === s.name && !x.skipped);
      return r === undefined ? [] : [{ scenario: s.name, startNs: r.startNs, events: r.events }];
    });
    const command = `npm run bench:faults -- ${process.argv.slice(2).join(" ")}`.trim();
    const written = await writeReport(opts.outDir, date, rows, timelines, { command });
    markdownFile = written.markdown;
    log(`report: ${markdownFile}`);
  }
  return { rows, runs, passed: runs.every((r) => r.passed), markdownFile, durationMs: Date.now() - t0 };
}

function fail(message: string): never {
  throw new Error(message);
}

/** A whole number from `min` to `max`, for a flag's value. */
function wholeNumber(flag: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : fail(`${flag} takes a whole number from ${min} to ${max}`);
  };
}

function oneOf<T extends string>(flag: string, values: readonly T[]): (v: string) => T {
  return (v) => (values.includes(v as T) ? (v as T) : fail(`${flag} is ${values.join(" or ")}`));
}

/** NAME[,NAME], repeatable. */
const names = (v: string, previous: string[] | undefined): string[] => [...(previous ?? []), ...v.split(",").filter((x) => x !== "")];

function parseArgs(argv: readonly string[]): FaultsOptions & { json: boolean } {
  const program = new Command("bench:faults")
    .description("Fault scenarios on real volnode processes, checked against the recorded history")
    .option("--quick", "every scenario once, briefly (part of npm test)")
    .option("--runs <n>", "runs of each scenario", wholeNumber("--runs", 1, 1000))
    .option("--scenario <names>", "only these scenarios (NAME[,NAME])", names)
    .option("--bug <names>", "planted bugs in the nodes (NAME[,NAME])", names)
    .option("--json", "print the rows as JSON")
    .option("--out <dir>", "where the report goes", path.join(ROOT, "bench/results"))
    .option("--no-report", "write no report")
    .option("--keep", "keep the runs' directories and node logs")
    .option("--partition <kind>", "how a cut link fails: stall or blackhole", oneOf("--partition", ["stall", "blackhole"] as const), "stall")
    .option("--lossy <kind>", "how a lossy link loses: reset or drop", oneOf("--lossy", ["reset", "drop"] as const), "reset")
    .option("--parallel <n>", "scenarios run at once", wholeNumber("--parallel", 1, 8))
    .option("--mount-retry-ms <ms>", "the clients' mount retry interval", wholeNumber("--mount-retry-ms", 0, 60_000))
    .option("--netns", "each node in its own network namespace, links cut with iptables (root)")
    .addHelpText("after", `\nscenarios: ${SCENARIOS.map((s) => s.name).join(", ")}\nbugs: ${Object.keys(PLANTED_BUG_NAMES).join(", ")}`)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  try {
    program.parse(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError && err.code === "commander.helpDisplayed") process.exit(0);
    throw new Error(err instanceof CommanderError ? `${err.message.replace(/^error: /, "")}: see --help` : (err as Error).message);
  }
  const o = program.opts<{
    quick?: true;
    runs?: number;
    scenario?: string[];
    bug?: string[];
    json?: true;
    out: string;
    report: boolean;
    keep?: true;
    partition: "stall" | "blackhole";
    lossy: "reset" | "drop";
    parallel?: number;
    mountRetryMs?: number;
    netns?: true;
  }>();
  if (o.netns === true) {
    const why = netnsUnavailable();
    if (why !== null) fail(why);
  }
  const quick = o.quick === true;
  return {
    quick,
    runs: o.runs ?? 1,
    scenarios: o.scenario ?? null,
    bugs: o.bug ?? [],
    outDir: o.report ? path.resolve(o.out) : null,
    keep: o.keep === true,
    json: o.json === true,
    partition: o.partition,
    lossy: o.lossy,
    parallel: o.parallel ?? (quick ? QUICK_PARALLEL : 1),
    ...(o.mountRetryMs === undefined ? {} : { mountRetryMs: o.mountRetryMs }),
    ...(o.netns === true ? { netns: true } : {}),
  };
}

function table(rows: readonly ScenarioRow[]): string {
  const head = ["scenario", "ok", "runs", "ops", "faults", "lost", "stale", "nonlin", "undec", "diverg", "fencedAck", "fencedVis", "fo p50", "fo p99", "resync ms", "resync MiB"];
  const lines = rows.map((r) => [
    r.scenario,
    r.runs === 0 ? "skip" : r.passed ? "yes" : "NO",
    r.runs,
    r.operations,
    r.faults,
    r.lostAcks,
    r.staleAcks,
    r.nonLinearizableReads,
    r.undecodableReads,
    r.divergentBlocks,
    r.fencedWritesAcked,
    r.fencedWritesVisible,
    r.failoverMsP50 ?? "-",
    r.failoverMsP99 ?? "-",
    r.resyncMs ?? "-",
    r.resyncBytes === null ? "-" : (r.resyncBytes / 2 ** 20).toFixed(1),
  ].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
  const fmt = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [fmt(head), ...lines.map(fmt)].join("\n");
}

async function main(): Promise<void> {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench:faults: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const report = await runFaults(opts);
  if (opts.json) {
    process.stdout.write(`${renderJson(report.rows)}\n`);
  }
  else {
    process.stdout.write(`${table(report.rows)}\n`);
    for (const r of report.rows) if (r.notes !== undefined) process.stdout.write(`${r.scenario}: ${r.notes}\n`);
    process.stdout.write(`${report.passed ? "all runs passed" : "SOME RUNS FAILED"} in ${Math.round(report.durationMs / 1000)} s\n`);
  }
  process.exit(report.passed ? 0 : 1);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

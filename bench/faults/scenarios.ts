/**
 * The fault scenarios of `npm run bench:faults`. Each one injects its faults
 * while the client processes run (inject), heals everything it broke before
 * it returns, and may add criteria of its own (check) to the common ones of
 * run.ts. Times are offsets from the workload's start, scaled by its length,
 * so --quick runs the same scenario briefly.
 */
import { closeSync, ftruncateSync, openSync, readSync, writeSync, fstatSync } from "node:fs";
import { readdir, rm, unlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { noQuorumBoundMs, clientLimits } from "../../src/client/index.js";
import { limits } from "../../src/core/limits.js";
import { PEER_SILENCE_TIMEOUT_MS } from "../../src/rpc/peer-transport.js";
import type { FollowerStatusWire, ReplicaStatusWire } from "../../src/rpc/volume-wire.js";
import type { Fault } from "../../tools/fault-proxy.js";
import type { FaultCluster } from "./cluster.js";
import { assert } from "../../src/core/assert.js";

export const VOLUME = "faults";
export const BLOCK_SIZE = 4096;
/** Blocks the clients read and write. */
export const HOT_BLOCKS = 64;
/** Blocks written once before the workload and never again (corruption targets), after the hot set. */
export const COLD_FIRST = 64;
export const COLD_BLOCKS = 24;
/** The bulk area (filler writes for the resync scenarios): 64 regions. */
export const BULK_FIRST = 4096;
export const BULK_BLOCKS = 64 * limits.regionBlocks;
export const VOLUME_BLOCKS = BULK_FIRST + BULK_BLOCKS;
/** Bulk bytes written while a replica is away: past twice the primary's retained log, so it needs region resync. */
export const BULK_BYTES_AWAY = 2 * limits.logRetainedBytesMax + 32 * 1024 * 1024;
/** A replica that was away must be back in sync within this after the faults healed (stated bound). */
export const RESYNC_BOUND_MS = 60_000;

/** The parts of Admin.ReplicaStatus the scenarios read (src/rpc/volume-wire.ts has the whole message). */
export type FollowerStatus = Omit<FollowerStatusWire, "resyncMs">;

export type ReplicaStatus = Pick<
  ReplicaStatusWire,
  "node" | "promisedEpoch" | "commitLsn" | "appliedLsn" | "consistent" | "primaryEpoch" | "primaryPhase" | "leaseValid" | "corruptFound" | "repairsDone" | "repairsFailed" | "diskFailed"
> & { followers: FollowerStatus[] };

export interface ScenarioContext {
  readonly cluster: FaultCluster;
  readonly quick: boolean;
  readonly workloadMs: number;
  /** Handoff slot: a client takes the volume over every slotMs. */
  readonly slotMs: number;
  readonly dir: string;
  /** Resolves at `ms` after the workload started. */
  at(ms: number): Promise<void>;
  /** Milliseconds since the workload started. */
  elapsedMs(): number;
  sleep(ms: number): Promise<void>;
  /** Records a fault; `hitsPrimary` faults count toward failover time. */
  fault(name: string, detail: string, hitsPrimary?: boolean): { end(): void };
  /** The node coordinating the current mount (waits for one, bounded). */
  primary(): Promise<string>;
  followers(primary: string): string[];
  status(node: string): Promise<ReplicaStatus | null>;
  /** Tells every client process to write filler (or stop); bulk bytes acknowledged so far. */
  bulk(on: boolean): void;
  bulkBytes(): number;
  /** Per-node control files of the disk fault hook (REPLIVOL_TEST_ONLY_DISK_FAULTS). */
  diskFaultControl(node: string): string;
  /** The fault that cuts a peer link (--partition: stall by default, or blackhole). */
  readonly partition: Fault;
  /** How a lossy link loses (--lossy): "reset" (stalls and connection resets, as TCP shows loss) or "drop" (chunks dropped: gaps in the stream). */
  readonly lossy: "reset" | "drop";
  /** Notes for the report row. */
  note(text: string): void;
  /** Scenario facts for check(). */
  readonly facts: Record<string, number | string | boolean>;
}

export interface Scenario {
  readonly name: string;
  readonly criterion: string;
  /**
   * Planted bugs a quick run of this scenario was seen to catch (2026-11-26;
   * accept-stale-epoch and apply-uncommitted not in every run of
   * primary-cut-from-peers and zombie-primary: it depends on whether the old
   * primary's appends of its epoch reach a follower after the new mount
   * (primary-cut-from-peers 2 of 3 runs; zombie-primary 0 of 3 since a woken
   * primary judges its lease by the clock); takeover-cut-primary caught it in
   * 3 of 3, and no-lease-wait in 3 of 3; takeover-lagging-replica caught
   * base-any-replica in 3 of 3). 2026-11-27: resync-cut-source-crash caught
   * count-inconsistent in 3 of 3 and corrupt-primary-hot repair-no-overlay
   * in 3 of 3 (6 of 6 on a machine loaded with two busy loops, with sixteen
   * workers); takeover-cut-primary apply-uncommitted in 10 of 10 so loaded,
   * once the primary's own sends were cut 300 ms before the rest (the old
   * primary cannot unwind the records it applied, and its replica leaves
   * service); resync-target-crash and resync-source-crash resync-mark-early
   * in 3 of 3 each (divergent blocks).
   */
  readonly catches: readonly string[];
  readonly needsRoot?: boolean;
  /** Workload length in ms. */
  workloadMs(quick: boolean): number;
  /**
   * The client processes, when not run.ts's default: `via[k]` is the node
   * client k mounts through first (else the replica set's order), `readers`
   * the workers of each client that only read (else none: every worker reads
   * and writes), `depth` its workers (else run.ts's DEPTH).
   */
  readonly clients?: { readonly via?: readonly string[]; readonly readers?: number; readonly depth?: number };
  /** Handoff slot length in ms, when not run.ts's default. */
  slotMs?(quick: boolean): number;
  /** Before the workload: corrupt files, mount tmpfs, ... */
  prepare?(ctx: ScenarioContext): Promise<void>;
  /** Blocks written once, by the process "seed", before prepare() and the workload: the cold blocks, the hot ones, or both. */
  readonly seeds?: readonly ("hot" | "cold")[];
  /** Writes the bulk area (heavy on disk and CPU): a parallel run never runs two such at once. */
  readonly bulk?: boolean;
  /** Uses the disk fault hook on every node. */
  readonly diskHook?: boolean;
  /** Data directories on tmpfs (root). */
  readonly tmpfsMiB?: number;
  inject(ctx: ScenarioContext): Promise<void>;
  /** After healing and the final checks: extra failures. */
  check?(ctx: ScenarioContext): Promise<string[]> | string[];
  /** --netns: why this scenario cannot run with namespaces and iptables (its row says "skipped in --netns: ..."). */
  readonly netnsSkip?: string;
}

/** Client k mounts through node k first, in the scenarios that set it (every handoff then moves the primary). */
const VIA = ["n1", "n2", "n3"] as const;

const COMMON = "0 lost/stale acks, 0 non-linearizable or undecodable reads, 0 fenced writes acked or visible, 0 divergent blocks after healing";
const FAILOVER = `failover p99 ≤ ${noQuorumBoundMs / 1000} s (the client library's NO_QUORUM bound)`;

/** Holds for `ms`, then heals with `heal` (whatever happens). */
async function during(ctx: ScenarioContext, ms: number, heal: () => void | Promise<void>): Promise<void> {
  try {
    await ctx.sleep(ms);
  } finally {
    await heal();
  }
}

async function waitUntil(what: string, probe: () => Promise<boolean>, ms: number, everyMs = 100): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      if (await probe()) return true;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  void what;
  return false;
}

/** The follower `node` is consistent and caught up, as the primary sees it. */
async function inSync(ctx: ScenarioContext, node: string): Promise<boolean> {
  const p = await ctx.primary();
  if (p === node) return true;
  const s = await ctx.status(p);
  const f = s?.followers.find((x) => x.node === node);
  return s !== null && f !== undefined && f.consistent && !f.resyncing && f.matchLsn >= s.commitLsn;
}

/** Files of the volume on a node's data directory. */
function volumeDir(ctx: ScenarioContext, node: string): string {
  return path.join(ctx.cluster.node(node).dataDir, "volumes", VOLUME);
}

/** Cuts `bytes` off the newest log segment and flips bits in what is left of its tail. */
async function tearLogTail(ctx: ScenarioContext, node: string, bytes: number, flips: number): Promise<string> {
  const dir = volumeDir(ctx, node);
  const segments = (await readdir(dir)).filter((f) => f.endsWith(".wal")).sort();
  const last = segments[segments.length - 1];
  if (last === undefined) return "no log segment";
  const file = path.join(dir, last);
  const fd = openSync(file, "r+");
  try {
    const size = fstatSync(fd).size;
    const cut = Math.min(bytes, Math.floor(size / 4));
    ftruncateSync(fd, size - cut);
    const left = size - cut;
    const done: number[] = [];
    for (let i = 0; i < flips && left > 0; i++) {
      const at = Math.max(0, left - 1 - Math.floor(Math.random() * Math.min(left, 64 * 1024)));
      flipBit(fd, at, i % 8);
      done.push(at);
    }
    return `${last}: cut ${cut} of ${size} bytes, flipped bits at ${done.join(", ")}`;
  } finally {
    closeSync(fd);
  }
}

function flipBit(fd: number, at: number, bit: number): void {
  const b = Buffer.alloc(1);
  if (readSync(fd, b, 0, 1, at) !== 1) return;
  b[0] = (b[0] ?? 0) ^ (1 << bit);
  writeSync(fd, b, 0, 1, at);
}

/** Flips a bit in the middle of each given block of a node's block data file. */
function corruptBlocks(ctx: ScenarioContext, node: string, blocks: readonly number[]): void {
  const fd = openSync(path.join(volumeDir(ctx, node), "blocks"), "r+");
  try {
    for (const b of blocks) flipBit(fd, b * BLOCK_SIZE + 1000, 3);
  } finally {
    closeSync(fd);
  }
}

async function restartIfDown(ctx: ScenarioContext, node: string): Promise<void> {
  if (!ctx.cluster.isUp(node)) await ctx.cluster.restart(node);
}

/** Takes a replica away, writes past the retained log, brings it back; resolves once its region resync started (or not, bounded). */
async function awayPastRetainedLog(ctx: ScenarioContext, target: string): Promise<boolean> {
  const f = ctx.fault("replica-away", `SIGKILL ${target}, ${BULK_BYTES_AWAY >> 20} MiB written meanwhile`);
  await ctx.cluster.kill(target, "SIGKILL");
  ctx.bulk(true);
  const start = ctx.bulkBytes();
  const written = await waitUntil("bulk written", () => Promise.resolve(ctx.bulkBytes() - start >= BULK_BYTES_AWAY), ctx.workloadMs * 0.75, 100);
  ctx.bulk(false);
  ctx.note(`${((ctx.bulkBytes() - start) / 2 ** 20).toFixed(0)} MiB written while ${target} was away${written ? "" : " (less than planned: the workload ran out)"}`);
  await ctx.cluster.restart(target);
  f.end();
  return waitUntil(
    "region resync started",
    async () => {
      const p = await ctx.primary();
      const s = await ctx.status(p);
      const fs = s?.followers.find((x) => x.node === target);
      return fs !== undefined && fs.resyncing && fs.regionsCopied > 0;
    },
    20_000,
    50,
  );
}

/** corrupt-primary-hot fails a run with fewer repairs than this from the late follower's copies. */
const LATE_REPAIRS_MIN = 3;

/** Log lines of `node` (kept since the run started) for protocol event `event`, and with `from` when given. */
function logLines(ctx: ScenarioContext, node: string, event: string, from?: string): number {
  let n = 0;
  for (const line of ctx.cluster.node(node).lines) {
    if (!line.includes(`"${event}"`)) continue;
    try {
      const o = JSON.parse(line) as { event?: unknown; from?: unknown };
      if (o.event === event && (from === undefined || o.from === from)) n++;
    } catch {
      // not JSON
    }
  }
  return n;
}

/** Blocks `primary` repaired from `source`'s copies. */
function repairsFrom(ctx: ScenarioContext, primary: string, source: string): number {
  return logLines(ctx, primary, "corrupt block repaired", source);
}

/** Resync rate of resync-cut-source-crash: the region resync outlasts its cut. */
const RESYNC_SLOW_BYTES_PER_SEC = 8 * 1024 * 1024;

/**
 * resync-cut-source-crash's faults: `target` away past the retained log; during its region resync
 * `p` (the primary) cut one way from `other`, then SIGKILLed; `p` back once another node's mount
 * chose its base.
 */
async function cutAndKillDuringResync(ctx: ScenarioContext, p: string, target: string, other: string): Promise<void> {
  ctx.facts["regionResync"] = await awayPastRetainedLog(ctx, target);
  const cutMs = 1500;
  const f = ctx.fault("cut-and-kill-source", `${p} → ${other} cut (blackhole) during ${target}'s region resync; ${cutMs} ms later SIGKILL ${p}`, true);
  try {
    ctx.cluster.cutOneWay(p, other, { kind: "blackhole" });
    await ctx.sleep(cutMs);
    const s = await ctx.status(p);
    const t = s?.followers.find((x) => x.node === target);
    const o = s?.followers.find((x) => x.node === other);
    ctx.facts["stillResyncing"] = t?.resyncing === true;
    // Records reached the resyncing replica and not the other: there was something to lose.
    ctx.facts["appendedPastOther"] = t !== undefined && o !== undefined && t.matchLsn > o.matchLsn;
    await ctx.cluster.kill(p, "SIGKILL");
    // Down, and still cut (with --netns a DROP rule is no blackhole: the dead primary's kernel
    // would retransmit its appends), until another node's mount chose its base, so that the
    // killed primary is not among the promisers. (The mount then waits: with one in-sync
    // replica it cannot commit until the old primary is back or the resync is done.)
    ctx.facts["remountedWithout"] = await waitUntil(
      "base chosen without the old primary",
      async () => {
        for (const id of ctx.followers(p)) if (["fetching", "mounting", "active"].includes((await ctx.status(id))?.primaryPhase ?? "")) return true;
        return false;
      },
      15_000,
    );
  } finally {
    ctx.cluster.healNetwork();
    await restartIfDown(ctx, p);
    f.end();
  }
}

/** A replica away past the retained log, then, during its region resync, SIGKILL of the resync's source (the primary) or target. */
function resyncCrash(victim: "source" | "target"): Scenario {
  return {
    name: `resync-${victim}-crash`,
    criterion: `${COMMON}; region resync ran, was cut by SIGKILL of its ${victim}, and finished within ${RESYNC_BOUND_MS / 1000} s of healing`,
    catches: ["resync-mark-early"],
    workloadMs: (q) => (q ? 28_000 : 45_000),
    // Few handoffs: each one stops the writes for a lease wait, and the bulk must get past the retained log.
    slotMs: (q) => (q ? 12_000 : 15_000),
    bulk: true,
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.05);
      const p = await ctx.primary();
      const target = ctx.followers(p)[0] ?? "n1";
      ctx.facts["regionResync"] = await awayPastRetainedLog(ctx, target);
      const killed = victim === "source" ? await ctx.primary() : target;
      const f =
        victim === "source"
          ? ctx.fault("sigkill-resync-source", `SIGKILL ${killed} (primary, resync source) during ${target}'s region resync`, true)
          : ctx.fault("sigkill-resync-target", `SIGKILL ${target} (resync target) during its region resync`);
      await ctx.cluster.kill(killed, "SIGKILL");
      await during(ctx, 1000, () => ctx.cluster.restart(killed));
      f.end();
    },
    check: (ctx) => (ctx.facts["regionResync"] === true ? [] : ["no region resync was seen before the crash"]),
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "primary-kill",
    criterion: `${COMMON}; ${FAILOVER}`,
    catches: [],
    workloadMs: (q) => (q ? 12_000 : 40_000),
    async inject(ctx) {
      const rounds = ctx.quick ? 2 : 5;
      for (let i = 0; i < rounds; i++) {
        await ctx.at(ctx.workloadMs * (0.15 + (0.7 * i) / rounds));
        const p = await ctx.primary();
        const f = ctx.fault("sigkill-primary", `SIGKILL ${p}`, true);
        await ctx.cluster.kill(p, "SIGKILL");
        await during(ctx, 1000, () => ctx.cluster.restart(p));
        f.end();
      }
    },
  },
  {
    name: "replica-kill-return",
    criterion: `${COMMON}; the replica is back in sync by itself`,
    catches: [],
    workloadMs: (q) => (q ? 8_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.2);
      const p = await ctx.primary();
      const r = ctx.followers(p)[0] ?? "n1";
      const f = ctx.fault("sigkill-replica", `SIGKILL ${r}`);
      await ctx.cluster.kill(r, "SIGKILL");
      await during(ctx, ctx.workloadMs * 0.35, () => ctx.cluster.restart(r));
      f.end();
    },
  },
  {
    name: "zombie-primary",
    criterion: `${COMMON}; the stopped primary's writes after the takeover are refused`,
    catches: ["apply-uncommitted"],
    // The primary stops just before a handoff and stays stopped until its own client has failed
    // over (reply timeout) and the next client, whose first calls (through the stopped node) time
    // out, has taken the volume over through another node; then it resumes, with requests of
    // both still queued in its sockets.
    workloadMs: (q) => (q ? 22_000 : 34_000),
    async inject(ctx) {
      await ctx.at(ctx.slotMs - 1000);
      const p = await ctx.primary();
      const ms = clientLimits.replyTimeoutMs + limits.leaseMs;
      const f = ctx.fault("sigstop-primary", `SIGSTOP ${p} for ${ms} ms (lease ${limits.leaseMs} ms), then SIGCONT`, true);
      ctx.cluster.pause(p);
      await during(ctx, ms, () => ctx.cluster.resume(p));
      f.end();
    },
  },
  {
    name: "primary-cut-from-peers",
    criterion: `${COMMON}; ${FAILOVER}`,
    catches: ["ack-before-quorum", "accept-stale-epoch", "apply-uncommitted"],
    // The cut starts just before a handoff and outlasts the new client's first mount attempt
    // (through the cut-off node, which gets no promises), so the volume is mounted again on the
    // majority's side while the old primary still has its client.
    workloadMs: (q) => (q ? 17_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.slotMs - 1000);
      const p = await ctx.primary();
      const ms = limits.mountTimeoutMs + limits.leaseMs + 2000;
      const f = ctx.fault("partition-primary-peers", `${p} ⇎ ${ctx.followers(p).join(",")} (${ctx.partition.kind} both ways) for ${ms} ms`, true);
      for (const o of ctx.followers(p)) ctx.cluster.cutBoth(p, o, ctx.partition);
      await during(ctx, ms, () => ctx.cluster.healNetwork());
      f.end();
    },
  },
  {
    name: "primary-cut-from-client",
    criterion: `${COMMON}; ${FAILOVER}`,
    catches: [],
    workloadMs: (q) => (q ? 19_000 : 40_000),
    async inject(ctx) {
      // Quick runs cut later: most of this scenario's slots go to mounts that
      // wait (a blackholed call, leases), so the second before the cut held
      // most of its operations, under 100 on a loaded CI machine.
      await ctx.at(ctx.quick ? 2000 : 1000);
      const p = await ctx.primary();
      // Past the client's reply timeout in full runs (the library fails over on its own); in a quick
      // run shorter, and the connection breaks when it heals (the blackhole left a gap in it).
      const ms = ctx.quick ? 6000 : clientLimits.replyTimeoutMs + 1500;
      const f = ctx.fault("partition-primary-client", `clients ⇎ ${p} for ${ms} ms (blackhole both ways)`, true);
      ctx.cluster.setClientLink(p, "both", { kind: "blackhole" });
      await during(ctx, ms, () => ctx.cluster.healNetwork());
      f.end();
    },
  },
  {
    name: "one-way-partition",
    criterion: `${COMMON}; ${FAILOVER}`,
    catches: ["ack-before-quorum"],
    workloadMs: (q) => (q ? 17_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.slotMs - 1000);
      const p = await ctx.primary();
      const ms = limits.mountTimeoutMs + limits.leaseMs + 2000;
      const f = ctx.fault("one-way-partition", `${p} → ${ctx.followers(p).join(",")} cut by ${ctx.partition.kind} for ${ms} ms (the other direction works)`, true);
      for (const o of ctx.followers(p)) ctx.cluster.cutOneWay(p, o, ctx.partition);
      await during(ctx, ms, () => ctx.cluster.healNetwork());
      f.end();
    },
  },
  {
    name: "takeover-cut-primary",
    criterion: `${COMMON}; ${FAILOVER}`,
    catches: ["no-lease-wait", "accept-stale-epoch", "apply-uncommitted"],
    // Client k mounts through node k, so every handoff moves the primary. Just before a handoff the
    // primary is cut from its peers; the next client mounts through another node at once, while the
    // old client's readers keep reading through the old primary under its lease: the new mount must
    // acknowledge nothing before that lease has run out. The cut is shorter than a peer link's
    // silence timeout, so the old primary's held appends arrive on the same streams when it heals.
    clients: { via: VIA, readers: 2 },
    workloadMs: (q) => (q ? 14_000 : 32_000),
    async inject(ctx) {
      const rounds = ctx.quick ? 1 : 3;
      const ms = Math.min(PEER_SILENCE_TIMEOUT_MS - 1000, limits.leaseMs + 1500);
      ctx.facts["handedOver"] = 0;
      ctx.facts["late"] = "";
      for (let i = 1; i <= rounds; i++) {
        const handoff = i * ctx.slotMs;
        // Who is primary is asked well ahead (a status sweep can take hundreds of ms on a loaded
        // machine), so that the cut itself lands on time, before the next client's mount asks for
        // promises; a cut that lands after it tests nothing (the old primary is then in the new base).
        await ctx.at(handoff - 1500);
        const p = await ctx.primary();
        // First only what the primary sends is cut, for 300 ms: the acknowledgements of what had
        // reached the followers still come back, so its client writes on, and the primary makes
        // durable records no follower gets (without this, the writes in flight at the cut may all
        // have reached the followers, and the old primary has nothing of its own to drop).
        await ctx.at(handoff - 600);
        const f = ctx.fault("partition-primary-peers", `${p} ⇏ ${ctx.followers(p).join(",")} (${ctx.partition.kind}) for 300 ms, then ${p} ⇎ ${ctx.followers(p).join(",")} (both ways) for ${ms} ms, across a handoff to a client mounting through another node`, true);
        try {
          for (const o of ctx.followers(p)) ctx.cluster.cutOneWay(p, o, ctx.partition);
          await ctx.at(handoff - 300);
          for (const o of ctx.followers(p)) ctx.cluster.cutBoth(p, o, ctx.partition);
          const cutAt = ctx.elapsedMs();
          if (cutAt >= handoff) ctx.facts["late"] = `${ctx.facts["late"]} handoff ${i}: the cut came ${Math.round(cutAt - handoff)} ms after it;`;
          else if (VIA[i % VIA.length] !== p) {
            ctx.facts["handedOver"] = Number(ctx.facts["handedOver"]) + 1;
            ctx.facts["cutPrimaries"] = `${String(ctx.facts["cutPrimaries"] ?? "")} ${p}`.trim();
          }
        } finally {
          await during(ctx, ms, () => ctx.cluster.healNetwork());
        }
        f.end();
      }
    },
    // Not a pass by default: at least one cut primary, cut before the handoff began, was left for
    // another node by the next client.
    // And such a primary dropped a tail of its own (records no follower had) when it came back:
    // what accept-stale-epoch and apply-uncommitted break.
    check: (ctx) => {
      if (Number(ctx.facts["handedOver"]) === 0) {
        return [`no handoff moved away from a primary cut before it (the primary was already on the next client's node, or the cut came late:${String(ctx.facts["late"])})`];
      }
      const cut = String(ctx.facts["cutPrimaries"]).split(" ");
      return cut.some((p) => logLines(ctx, p, "log truncated") > 0) ? [] : [`no cut-off primary (${cut.join(", ")}) dropped a log tail of its own after the handoff`];
    },
  },
  {
    name: "takeover-lagging-replica",
    criterion: COMMON,
    catches: ["base-any-replica"],
    // Client k mounts through node k. For two seconds before a handoff the primary's link to the
    // next client's node is cut one way (its appends held), so that node's log lags behind the
    // other two; the next client mounts through it while the link is still cut. The mount must
    // continue the most up-to-date history it was promised (the third node's), not its own.
    clients: { via: VIA },
    workloadMs: (q) => (q ? 14_000 : 32_000),
    async inject(ctx) {
      const rounds = ctx.quick ? 1 : 3;
      const before = 2000;
      const ms = before + 1500;
      ctx.facts["lagged"] = 0;
      for (let i = 1; i <= rounds; i++) {
        await ctx.at(i * ctx.slotMs - before);
        const p = await ctx.primary();
        const next = VIA[i % VIA.length] ?? "";
        if (next === p) {
          ctx.note(`handoff ${i}: the primary was already ${p}, the next client's node: no lag to make`);
          continue;
        }
        ctx.facts["lagged"] = Number(ctx.facts["lagged"]) + 1;
        const f = ctx.fault("lagging-replica", `${p} → ${next} cut (${ctx.partition.kind}) for ${ms} ms, across the handoff to a client mounting through ${next}`);
        ctx.cluster.cutOneWay(p, next, ctx.partition);
        await during(ctx, ms, () => ctx.cluster.healNetwork());
        f.end();
      }
    },
    // Not a pass by default: at least one handoff went to a node held back.
    check: (ctx) => (Number(ctx.facts["lagged"]) > 0 ? [] : ["no handoff went to a lagging node (the primary was already on the next client's node each time)"]),
  },
  {
    name: "slow-lossy-links",
    criterion: COMMON,
    catches: [],
    // Delay, stalls and connection resets of chosen links: the proxy's, no iptables equivalent.
    netnsSkip: "needs netem (delay and loss; tc netem is not available here)",
    workloadMs: (q) => (q ? 8_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.1);
      const f = ctx.fault("slow-links", "every peer link delay 15±10 ms, client links 5±3 ms");
      for (const a of ctx.cluster.ids()) {
        for (const b of ctx.cluster.ids()) if (a !== b) ctx.cluster.peerProxy(a, b).set({ direction: "both", fault: { kind: "delay", ms: 15, jitterMs: 10 } });
        ctx.cluster.setClientLink(a, "both", { kind: "delay", ms: 5, jitterMs: 3 });
      }
      try {
        await ctx.at(ctx.workloadMs * 0.4);
        const p = await ctx.primary();
        const o = ctx.followers(p)[0] ?? "n1";
        const links = [ctx.cluster.peerProxy(p, o), ctx.cluster.peerProxy(o, p)];
        const slow = { kind: "delay", ms: 15, jitterMs: 10 } as const;
        let d: { end(): void };
        if (ctx.lossy === "drop") {
          d = ctx.fault("lossy-link", `${p} ⇄ ${o}: 2% of chunks dropped (the byte stream gets gaps) for 2 s`);
          for (const l of links) l.set({ direction: "both", fault: [{ kind: "drop", probability: 0.02 }, slow] });
          await ctx.sleep(2000);
        } else {
          // Loss as TCP shows it: bursts of retransmission (the link holds bytes a while) and
          // connections that break (reset), on the primary's link to one follower.
          d = ctx.fault("lossy-link", `${p} ⇄ ${o}: 300 ms stalls and connection resets, alternating, for 2.4 s`);
          for (let i = 0; i < 4; i++) {
            for (const l of links) l.set({ direction: "both", fault: { kind: "stall" } });
            await ctx.sleep(300);
            for (const l of links) l.set({ direction: "both", fault: slow });
            if (i % 2 === 1) for (const l of links) l.resetConnections();
            await ctx.sleep(300);
          }
        }
        d.end();
        await ctx.at(ctx.workloadMs * 0.8);
      } finally {
        ctx.cluster.healNetwork();
        f.end();
      }
    },
  },
  {
    name: "all-nodes-kill",
    criterion: `${COMMON}; ${FAILOVER}`,
    catches: [],
    workloadMs: (q) => (q ? 10_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.3);
      const f = ctx.fault("sigkill-all", "SIGKILL every node at once, restart 500 ms later", true);
      await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.kill(id, "SIGKILL")));
      await during(ctx, 500, async () => {
        await Promise.all(ctx.cluster.ids().map((id) => restartIfDown(ctx, id)));
      });
      f.end();
    },
  },
  {
    name: "torn-tail-bit-flips",
    criterion: `${COMMON}; the damaged replica is back in sync`,
    catches: [],
    workloadMs: (q) => (q ? 10_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.3);
      const p = await ctx.primary();
      const r = ctx.followers(p)[0] ?? "n1";
      const f = ctx.fault("torn-tail", `SIGKILL ${r}, tear its log tail and flip bits, restart`);
      await ctx.cluster.kill(r, "SIGKILL");
      try {
        const what = await tearLogTail(ctx, r, 3000, 4);
        corruptBlocks(ctx, r, [1, 7, 13]);
        ctx.note(`${r}: ${what}; bits flipped in blocks 1, 7, 13 of its block data`);
      } finally {
        await ctx.cluster.restart(r);
        f.end();
      }
    },
  },
  {
    name: "corrupt-every-replica",
    criterion: `${COMMON}; corrupt copies found and repaired, never returned`,
    catches: [],
    seeds: ["cold"],
    workloadMs: (q) => (q ? 8_000 : 30_000),
    async prepare(ctx) {
      // A clean stop checkpoints the cold blocks into the block data, which is what gets corrupted.
      const f = ctx.fault("corrupt-blocks", "distinct cold blocks bit-flipped in each replica's block data (nodes stopped)");
      await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.kill(id, "SIGTERM")));
      const per = Math.floor(COLD_BLOCKS / ctx.cluster.ids().length);
      const notes: string[] = [];
      for (const [i, id] of ctx.cluster.ids().entries()) {
        const blocks = Array.from({ length: per }, (_, k) => COLD_FIRST + i * per + k);
        corruptBlocks(ctx, id, blocks);
        notes.push(`${id}: ${blocks[0]}..${blocks[blocks.length - 1]}`);
      }
      ctx.note(`corrupted ${notes.join("; ")}`);
      await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.restart(id)));
      f.end();
    },
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.3);
      const f = ctx.fault("scrub", "Admin.Scrub on every replica");
      await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.adminCall(id, "Scrub", { volume: VOLUME }).catch(() => undefined)));
      f.end();
    },
    async check(ctx) {
      let found = 0;
      for (const id of ctx.cluster.ids()) found += (await ctx.status(id))?.corruptFound ?? 0;
      ctx.facts["corruptFound"] = found;
      return found > 0 ? [] : ["no corrupt copy was found by reads or scrub"];
    },
  },
  {
    name: "corrupt-primary-hot",
    criterion: `${COMMON}; corrupt copies on the primary repaired from a follower whose copies arrive late, never returned`,
    catches: ["repair-no-overlay"],
    seeds: ["hot"],
    // Every hot block is corrupt on the node the clients mount through (the replica set's first),
    // and everything the follower a repair asks first (the next in the set) sends it arrives 150 ms
    // late: while a good copy travels, the workload writes the block again. A repair must bring
    // the copy forward with those writes, or a write acknowledged meanwhile is overwritten by an
    // older value. (Until its first late answers, that follower does not count as in sync, and
    // repairs ask the third node: the run counts those from the late one.)
    workloadMs: (q) => (q ? 8_000 : 30_000),
    // Sixteen workers, not four: a read of a corrupt block waits for its repair, so with four the
    // workers are mostly all waiting, and few writes land while a copy travels (one CI run on a
    // loaded machine did 490 operations in 8 s, and its 32 late repairs raced no write).
    clients: { depth: 16 },
    netnsSkip: "needs delay on one link (tc netem is not available here)",
    async prepare(ctx) {
      const [first] = ctx.cluster.ids();
      assert(first !== undefined);
      const f = ctx.fault("corrupt-blocks", `every hot block bit-flipped in ${first}'s block data (nodes stopped)`);
      try {
        await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.kill(id, "SIGTERM")));
        corruptBlocks(ctx, first, Array.from({ length: HOT_BLOCKS }, (_, b) => b));
        await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.restart(id)));
      } finally {
        f.end();
      }
    },
    async inject(ctx) {
      const [first, second] = ctx.cluster.ids();
      assert(first !== undefined && second !== undefined);
      const f = ctx.fault("late-repair-source", `everything ${second} sends ${first} delayed 150 ms (the other direction works)`);
      try {
        ctx.cluster.cutOneWay(second, first, { kind: "delay", ms: 150 });
        await during(ctx, ctx.workloadMs * 0.8, () => ctx.cluster.healNetwork());
      } finally {
        f.end();
      }
      const s = await ctx.status(first);
      const late = repairsFrom(ctx, first, second);
      ctx.facts["lateRepairs"] = late;
      ctx.facts["primary"] = await ctx.primary();
      ctx.note(`${first}: ${s?.corruptFound ?? 0} corrupt blocks found, ${s?.repairsDone ?? 0} repaired, ${late} of them from ${second}'s late copies`);
    },
    check(ctx) {
      const failures: string[] = [];
      const first = ctx.cluster.ids()[0];
      if (ctx.facts["primary"] !== first) failures.push(`the primary was not ${String(first)}, the node with the corrupt copies, at 0.8 of the workload (${String(ctx.facts["primary"])})`);
      if (Number(ctx.facts["lateRepairs"] ?? 0) < LATE_REPAIRS_MIN) failures.push(`fewer than ${LATE_REPAIRS_MIN} blocks were repaired from the late follower's copies (${String(ctx.facts["lateRepairs"])})`);
      return failures;
    },
  },
  {
    name: "disk-eio",
    criterion: `${COMMON}; the replica leaves service (DISK_FAILED) and the volume keeps serving`,
    catches: [],
    diskHook: true,
    workloadMs: (q) => (q ? 8_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.25);
      const p = await ctx.primary();
      const r = ctx.followers(p)[0] ?? "n1";
      const f = ctx.fault("disk-eio", `every write and sync of ${r} fails with EIO`);
      await writeFile(ctx.diskFaultControl(r), "eio");
      const failed = await waitUntil("disk failed", async () => (await ctx.status(r))?.diskFailed === true, ctx.workloadMs * 0.4);
      ctx.facts["diskFailed"] = failed;
      await ctx.at(ctx.workloadMs * 0.7);
      const f2 = ctx.fault("replace-disk", `${r} restarted with a working disk`);
      await writeFile(ctx.diskFaultControl(r), "");
      f.end();
      await ctx.cluster.kill(r, "SIGKILL");
      await ctx.cluster.restart(r);
      f2.end();
    },
    check(ctx) {
      return ctx.facts["diskFailed"] === true ? [] : ["the replica did not report DISK_FAILED"];
    },
  },
  {
    name: "disk-enospc",
    criterion: `${COMMON}; the replica leaves service (DISK_FAILED) and the volume keeps serving`,
    catches: [],
    needsRoot: true,
    tmpfsMiB: 256,
    workloadMs: (q) => (q ? 8_000 : 30_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.25);
      const p = await ctx.primary();
      const r = ctx.followers(p)[0] ?? "n1";
      const filler = path.join(ctx.cluster.node(r).dataDir, "filler");
      const f = ctx.fault("disk-enospc", `${r}'s tmpfs filled up (real ENOSPC)`);
      await fillUp(filler);
      const failed = await waitUntil("disk failed", async () => (await ctx.status(r))?.diskFailed === true, ctx.workloadMs * 0.4);
      ctx.facts["diskFailed"] = failed;
      await ctx.at(ctx.workloadMs * 0.7);
      await unlink(filler).catch(() => undefined);
      f.end();
      const f2 = ctx.fault("free-space", `${r} restarted with space again`);
      await ctx.cluster.kill(r, "SIGKILL");
      await ctx.cluster.restart(r);
      f2.end();
    },
    check(ctx) {
      return ctx.facts["diskFailed"] === true ? [] : ["the replica did not report DISK_FAILED"];
    },
  },
  resyncCrash("source"),
  resyncCrash("target"),
  {
    name: "resync-cut-source-crash",
    criterion: `${COMMON}; no write acknowledged without W in-sync replicas: every acknowledged write survives the primary's SIGKILL while cut one way from its other in-sync follower during a region resync`,
    catches: ["count-inconsistent"],
    workloadMs: (q) => (q ? 28_000 : 45_000),
    // One client, no handoff: a new mount between the replica's return and the mount after the kill
    // would restart the resync from its own snapshot, and one during the cut would take the
    // writes acknowledged without a quorum of in-sync replicas (the bug) into that snapshot.
    slotMs: (q) => (q ? 30_000 : 46_000),
    bulk: true,
    // A replica is away past the retained log and comes back; its region resync runs slowly. During
    // it the primary's link to its other follower, the only other in-sync replica, is cut one way:
    // a write has no quorum of in-sync replicas then (the resyncing one does not count). Still cut,
    // the primary is SIGKILLed, and stays down until another node's mount has chosen its base.
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.05);
      const p = await ctx.primary();
      const [target, other] = ctx.followers(p);
      assert(target !== undefined && other !== undefined);
      // Slow enough that the resync outlasts the cut (per node: whichever is primary); set back at the end.
      const rates = new Map<string, number>();
      for (const id of ctx.cluster.ids()) rates.set(id, (await ctx.cluster.adminCall<{ resyncBytesPerSec?: number }>(id, "NodeStatus", {})).resyncBytesPerSec ?? 0);
      await Promise.all(ctx.cluster.ids().map((id) => ctx.cluster.adminCall(id, "SetResyncRate", { bytesPerSec: RESYNC_SLOW_BYTES_PER_SEC })));
      try {
        await cutAndKillDuringResync(ctx, p, target, other);
      } finally {
        await Promise.all([...rates].map(([id, bytesPerSec]) => ctx.cluster.adminCall(id, "SetResyncRate", { bytesPerSec }).catch(() => undefined)));
      }
    },
    check(ctx) {
      const failures: string[] = [];
      if (ctx.facts["regionResync"] !== true) failures.push("no region resync was seen before the cut");
      if (ctx.facts["stillResyncing"] !== true) failures.push("the region resync had ended before the primary was killed");
      if (ctx.facts["appendedPastOther"] !== true) failures.push("no record reached the resyncing replica past the cut-off one before the kill");
      if (ctx.facts["remountedWithout"] !== true) failures.push("no mount chose its base without the killed primary");
      return failures;
    },
  },
  {
    name: "rolling-restart",
    criterion: `${COMMON}; ${FAILOVER}; every node back in sync before the next stops`,
    catches: [],
    workloadMs: (q) => (q ? 14_000 : 40_000),
    async inject(ctx) {
      await ctx.at(ctx.workloadMs * 0.1);
      let allBack = true;
      for (const id of ctx.cluster.ids()) {
        const p = await ctx.primary();
        const f = ctx.fault("restart-node", `SIGTERM ${id} and start it again${id === p ? " (the primary)" : ""}`, id === p);
        await ctx.cluster.kill(id, "SIGTERM");
        await ctx.cluster.restart(id);
        f.end();
        const back = await waitUntil("back in sync", () => inSync(ctx, id), ctx.quick ? 8_000 : 20_000);
        allBack &&= back;
      }
      ctx.facts["allBack"] = allBack;
    },
    check: (ctx) => (ctx.facts["allBack"] === true ? [] : ["a restarted node was not back in sync before the next one stopped"]),
  },
];

/** Writes zeros into `file` until the file system is full (ENOSPC), bounded. */
async function fillUp(file: string): Promise<void> {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(1024 * 1024);
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd);
  }
  await Promise.resolve();
}

export async function removeQuietly(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true }).catch(() => undefined);
}

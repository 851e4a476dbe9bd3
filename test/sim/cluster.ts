/**
 * The simulated world: a seeded event loop driving real ReplicaCore objects
 * over a fake network (delay, loss, duplication, reordering, partitions,
 * one-way cuts), fake disks (group commit, crash, bit flips) and drifting
 * clocks, with clients that mount, write, read, fail over and take over.
 */
import { assert } from "../../src/core/assert.js";
import type { ErrorCode } from "../../src/core/errors.js";
import type { ClientRequest, CoreAction, CoreEvent, PeerMessage, RequestId } from "../../src/core/messages.js";
import { isReservedClient, ReplicaCore, type CoreTiming, type TestOnlyPlantedBugs } from "../../src/core/replica.js";
import { asBlock, asClientId, asNodeId, asTicks, type LogRecord, type NodeId, type VolumeConfig } from "../../src/core/types.js";
import { SimDisk } from "./disk.js";
import type { History, HistoryOp } from "./history.js";
import { Random } from "./random.js";

export const SIM_BLOCK_SIZE = 8;
/** The replace operator's own mount (a reserved id: clients take it over without asking, as volctl's own mount is not). */
const OPERATOR_CLIENT_ID = asClientId("replivol:operator");
export const SIM_BLOCK_COUNT = 16;
/** Blocks 0..LINEAR_BLOCKS-1 take only writes (checked for linearizability); the rest take trims and zeroes too. */
export const LINEAR_BLOCKS = 12;
export const SIM_REGION_BLOCKS = 2;
/** Ticks between the regions a node scrubs. */
const SIM_SCRUB_INTERVAL = 150;

/** Messages only a primary sends: a replica that admits one of its promised epoch hears that primary (ReplicaCore.admitPrimaryMessage). */
const PRIMARY_MESSAGES: ReadonlySet<PeerMessage["type"]> = new Set(["append", "regionVersions", "resyncBegin", "region", "resyncDone", "blockFetch"]);

export const SIM_TIMING: CoreTiming = {
  leaseTicks: 100,
  heartbeatTicks: 20,
  resendTicks: 40,
  mountTimeoutTicks: 400,
  writeTimeoutTicks: 500,
  driftPermille: 50,
};

/** Clock rates stay within this much of real time: inside the core's drift margin. */
const CLOCK_DRIFT_MAX = 0.04;
const CLIENT_TIMEOUT = 250;

export interface SimConfig {
  readonly seed: number;
  readonly replicas: number;
  readonly bugs: TestOnlyPlantedBugs;
  readonly safetyTicks: number;
  readonly livenessTicksMax: number;
  readonly trace: boolean;
}

interface QueuedEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

class EventQueue {
  private heap: QueuedEvent[] = [];
  private seq = 0;

  push(time: number, run: () => void): void {
    const e = { time, seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i] as QueuedEvent, h[parent] as QueuedEvent)) break;
      [h[i], h[parent]] = [h[parent] as QueuedEvent, h[i] as QueuedEvent];
      i = parent;
    }
  }

  pop(): QueuedEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l] as QueuedEvent, h[m] as QueuedEvent)) m = l;
        if (r < h.length && before(h[r] as QueuedEvent, h[m] as QueuedEvent)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as QueuedEvent, h[i] as QueuedEvent];
        i = m;
      }
    }
    return top;
  }

  get size(): number {
    return this.heap.length;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

// ---------------------------------------------------------------------------

type ClientReply =
  | { readonly reqId: RequestId; readonly ok: true; readonly epoch?: number; readonly data?: Uint8Array }
  | { readonly reqId: RequestId; readonly ok: false; readonly code: ErrorCode; readonly message: string; readonly retryAt?: NodeId };

interface SimNode {
  readonly id: NodeId;
  disk: SimDisk;
  /** Whether the node holds a replica of the volume (a spare gets one when a replacement starts; a replaced one loses it). */
  holdsReplica: boolean;
  core: ReplicaCore | null;
  incarnation: number;
  readonly clockRate: number;
  readonly clockOffset: number;
  /** reqId -> the client that asked. */
  readonly requesters: Map<RequestId, string>;
}

interface InflightRequest {
  reqId: RequestId;
  readonly req: ClientRequest;
  readonly ops: HistoryOp[];
  sentAt: number;
}

interface SimClient {
  readonly name: string;
  session: number;
  clientId: string;
  state: "idle" | "mounting" | "mounted" | "fenced" | "done";
  via: NodeId | null;
  takeover: boolean;
  nextSeq: number;
  mountReqId: RequestId | null;
  mountSentAt: number;
  /** Writes sent and not answered, in clientSeq order: replayed after a failover. */
  readonly unacked: InflightRequest[];
  readonly reads: Map<RequestId, InflightRequest>;
  opsLeft: number;
  readonly concurrency: number;
  readonly final: boolean;
  finalReadsLeft: number[];
}

export class SimCluster {
  readonly rng: Random;
  readonly config: VolumeConfig;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients = new Map<string, SimClient>();
  private readonly events = new EventQueue();
  readonly history: History = { ops: [], mounts: [], violations: [] };
  /** Per node, the last takeover of a client's mount it promised (see checkTakeoverPromises). */
  private readonly takeoverGrants = new Map<NodeId, { epoch: number; clientId: string; candidate: NodeId; at: number }>();
  readonly traceLines: string[] = [];
  now = 0;
  private stamp = 0;
  private nextReqId = 1;
  private nextValue = 1;
  private readonly cut = new Set<string>();
  private readonly appliedAt = new Map<number, { epoch: number; node: NodeId }>();
  private readonly streamLast = new Map<string, number>();
  private readonly brokenStreams = new Set<string>();
  private lossProb = 0;
  private dupProb = 0;
  private flipsLeft: number;
  private readonly flipped = new Set<NodeId>();
  eventsRun = 0;
  liveness = false;
  private readonly retainedRecordsMax: number;
  /** Where the replace operator mounted the volume itself, if it did. */
  private operatorMountVia: NodeId | null = null;
  /**
   * Whether a replacement (replaceReplica) is under way: neither done nor
   * given up. (One given up after its attempts may still have left a joint
   * configuration for a later mount to finish.)
   */
  private replacing = false;
  /** Resync pacing, as a throttled resync on a real node paces its copies. */
  private readonly resyncRegionIntervalTicks: number;

  constructor(readonly cfg: SimConfig) {
    this.rng = new Random(cfg.seed);
    const ids = Array.from({ length: cfg.replicas }, (_, i) => asNodeId(`n${i + 1}`));
    this.config = { name: "simvol", blockSize: SIM_BLOCK_SIZE, blockCount: SIM_BLOCK_COUNT, replicas: ids, configVersion: 1 };
    this.flipsLeft = cfg.replicas - Math.floor(cfg.replicas / 2) - 1;
    this.retainedRecordsMax = this.rng.pick([4, 8, 16, 64]);
    this.resyncRegionIntervalTicks = this.rng.pick([0, 5, 20]);
    // A spare node, without a replica until a replacement builds one on it.
    const spare = asNodeId(`n${cfg.replicas + 1}`);
    for (const id of [...ids, spare]) {
      const node: SimNode = {
        id,
        disk: this.newDisk(this.config),
        holdsReplica: id !== spare,
        core: null,
        incarnation: 0,
        clockRate: 1 + (this.rng.float() * 2 - 1) * CLOCK_DRIFT_MAX,
        clockOffset: this.rng.int(0, 10_000),
        requesters: new Map(),
      };
      this.nodes.set(id, node);
      if (node.holdsReplica) this.startNode(node);
    }
  }

  private newDisk(config: VolumeConfig): SimDisk {
    return new SimDisk({ blockSize: SIM_BLOCK_SIZE, blockCount: SIM_BLOCK_COUNT, regionBlocks: SIM_REGION_BLOCKS, logRetainedRecordsMax: this.retainedRecordsMax, config });
  }

  /** The nodes that hold a replica now. */
  replicaNodes(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.holdsReplica).map((n) => n.id);
  }

  /**
   * volctl replace, as an operator runs it: an empty replica on a node that
   * holds none, then "replace" asked of the primary until it answers; once
   * the primary's configuration no longer names `from` (committed), the old
   * replica is deleted. Retries every few hundred ticks, through faults.
   */
  replaceReplica(from: NodeId, to: NodeId, attempt = 0): void {
    const target = this.nodes.get(to);
    this.replacing = target !== undefined && attempt <= 60;
    if (target === undefined || !this.replacing) return;
    const again = (): void => this.at(this.rng.int(100, 300), () => this.replaceReplica(from, to, attempt + 1));
    // Done once a replica of the new set knows the final configuration committed.
    const done = [...this.nodes.values()].some((n) => {
      const st = n.holdsReplica && n.id !== from ? n.core?.status() : undefined;
      return st !== undefined && !st.config.replicas.includes(from) && st.config.replicas.includes(to) && st.config.previousReplicas === undefined && st.configCommitted;
    });
    const p = this.primaryNode();
    const pc = p === null ? null : (this.nodes.get(p)?.core ?? null);
    if (!done && pc === null) {
      // No mount is live: the operator's tool mounts the volume itself (as volctl does).
      const via = this.nodes.get(this.rng.pick(this.replicaNodes()));
      if (via?.core !== null && via !== undefined) {
        this.operatorMountVia = via.id;
        this.step(via, { type: "request", reqId: this.nextReqId++, req: { type: "mount", clientId: OPERATOR_CLIENT_ID, takeover: false } });
      }
      return again();
    }
    if (done) {
      this.replacing = false;
      const via = this.operatorMountVia === null ? undefined : this.nodes.get(this.operatorMountVia);
      if (via !== undefined && via.core?.status().primary?.clientId === OPERATOR_CLIENT_ID) this.step(via, { type: "request", reqId: this.nextReqId++, req: { type: "unmount" } });
      this.operatorMountVia = null;
      const old = this.nodes.get(from);
      if (old !== undefined && old.holdsReplica) {
        this.trace(`REPLACE done: ${from} deleted`);
        if (old.core !== null) this.crashNode(from);
        old.holdsReplica = false;
        old.disk = this.newDisk(this.config);
      }
      return;
    }
    assert(pc !== null);
    const s = pc.status();
    if (!target.holdsReplica) {
      if (!s.config.replicas.includes(from) || s.config.replicas.includes(to) || s.config.previousReplicas !== undefined) {
        // Not this replacement's to start: given up.
        this.replacing = false;
        return;
      }
      target.holdsReplica = true;
      target.disk = this.newDisk({ ...s.config, configVersion: s.config.configVersion + 1, replacement: { from, to } });
      this.trace(`REPLACE ${from} by ${to}: empty replica created`);
      this.startNode(target);
    }
    const n = this.nodes.get(p as NodeId) as SimNode;
    const reqId = this.nextReqId++;
    this.step(n, { type: "request", reqId, req: { type: "replace", from, to } });
    again();
  }

  trace(line: string): void {
    if (this.cfg.trace) this.traceLines.push(`${String(this.now).padStart(6)} ${line}`);
  }

  /** A timestamp for the history: unique and ordered like real time. */
  private tick(): number {
    return ++this.stamp;
  }

  at(delay: number, run: () => void): void {
    this.events.push(this.now + Math.max(0, delay), run);
  }

  runUntil(time: number, stop: () => boolean = () => false): void {
    for (;;) {
      if (stop()) return;
      const e = this.events.pop();
      if (e === undefined) return;
      if (e.time > time) {
        this.events.push(e.time, e.run);
        this.now = time;
        return;
      }
      this.now = e.time;
      this.eventsRun++;
      e.run();
    }
  }

  // --- Nodes -----------------------------------------------------------------

  private localTime(n: SimNode): number {
    return Math.floor(n.clockOffset + n.clockRate * this.now);
  }

  private startNode(n: SimNode): void {
    n.incarnation++;
    const recovered = n.disk.recover(asTicks(this.localTime(n)));
    n.core = new ReplicaCore(
      {
        nodeId: n.id,
        config: n.disk.durableConfig(),
        timing: SIM_TIMING,
        regionBlocks: SIM_REGION_BLOCKS,
        logRetainedRecordsMax: this.retainedRecordsMax,
        logRetainedBytesMax: 1 << 20,
        appendRecordsPerMessageMax: 4,
        appendRecordsInFlightMax: 16,
        // Binds before the record window does (records of one to a few 8-byte blocks).
        appendBytesInFlightMax: 64,
        regionsInFlightMax: 1,
        resyncRegionIntervalTicks: this.resyncRegionIntervalTicks,
        testOnlyPlantedBugs: this.cfg.bugs,
      },
      recovered,
    );
    this.trace(`${n.id} starts (incarnation ${n.incarnation}, head ${recovered.records.length} records, unsure ${recovered.unsurePastHead}, consistent ${recovered.consistent})`);
    const inc = n.incarnation;
    const tickLoop = (): void => {
      if (n.incarnation !== inc || n.core === null) return;
      this.step(n, { type: "tick", now: asTicks(this.localTime(n)) });
      this.at(this.rng.int(3, 7), tickLoop);
    };
    this.at(this.rng.int(0, 5), tickLoop);
    const checkpointLoop = (): void => {
      if (n.incarnation !== inc || n.core === null) return;
      n.disk.checkpoint();
      this.at(this.rng.int(20, 80), checkpointLoop);
    };
    this.at(this.rng.int(20, 80), checkpointLoop);
    // A scrub, one region at a time, as the driver runs one (rule 9 for copies no read touches).
    let scrubRegion = 0;
    const scrubLoop = (): void => {
      if (n.incarnation !== inc || n.core === null) return;
      const first = scrubRegion * SIM_REGION_BLOCKS;
      const bad = n.disk.corruptIn(first, Math.min(SIM_REGION_BLOCKS, SIM_BLOCK_COUNT - first));
      if (bad.length > 0) this.step(n, { type: "corrupt", blocks: bad.map(asBlock), read: null });
      scrubRegion = (scrubRegion + 1) % Math.ceil(SIM_BLOCK_COUNT / SIM_REGION_BLOCKS);
      this.at(SIM_SCRUB_INTERVAL, scrubLoop);
    };
    this.at(SIM_SCRUB_INTERVAL, scrubLoop);
  }

  /** An event for the node's core after the actions being executed (the driver's inbox). */
  private postLater(n: SimNode, ev: CoreEvent): void {
    const inc = n.incarnation;
    this.at(0, () => {
      if (n.incarnation === inc) this.step(n, ev);
    });
  }

  /**
   * Media corruption of one block's copy on one replica. Disk faults, bit
   * flips in a log included, stay on at most N - W replicas (beyond that the
   * promises do not claim to hold), so a good copy of every block exists on
   * W replicas.
   */
  corruptRandomBlock(rng: Random): void {
    const nodes = [...this.nodes.values()].filter((o) => o.holdsReplica && (this.flipped.has(o.id) || this.flipsLeft > 0));
    if (nodes.length === 0) return;
    const n = rng.pick(nodes);
    const block = rng.int(0, SIM_BLOCK_COUNT - 1);
    this.markFaulty(n);
    n.disk.corruptBlock(block);
    this.trace(`${n.id} CORRUPTION of block ${block}`);
  }

  crashNode(id: NodeId): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.core === null) return;
    const flip = this.flipsLeft > 0 && !this.flipped.has(id) && this.rng.chance(0.3) ? (k: number) => this.rng.int(0, k - 1) : null;
    n.core = null;
    n.incarnation++;
    n.requesters.clear();
    // What it promised to a takeover is not on its disk: restarted, it no longer knows it (a known limit).
    this.takeoverGrants.delete(id);
    const before = n.disk.corruptionsCut;
    n.disk.crash(flip);
    if (n.disk.corruptionsCut > before) {
      this.flipsLeft--;
      this.flipped.add(id);
    }
    this.trace(`${id} CRASHES${n.disk.corruptionsCut > before ? " (a bit flip in its log will be cut)" : ""}`);
  }

  restartNode(id: NodeId): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.core !== null || !n.holdsReplica) return;
    this.startNode(n);
  }

  isUp(id: NodeId): boolean {
    return this.nodes.get(id)?.core !== null;
  }

  private step(n: SimNode, ev: CoreEvent): void {
    const core = n.core;
    if (core === null) return;
    let actions: CoreAction[];
    try {
      actions = core.step(ev);
    } catch (e) {
      this.history.violations.push({ promise: "invariant", detail: `${n.id}: ${(e as Error).message}` });
      this.trace(`${n.id} ASSERTION: ${(e as Error).stack ?? String(e)}`);
      throw e;
    }
    for (const a of actions) this.execute(n, a);
  }

  private execute(n: SimNode, a: CoreAction): void {
    switch (a.type) {
      case "send":
        this.sendPeer(n.id, a.to, a.msg);
        return;
      case "persistSuperblock":
        n.disk.enqueue({ kind: "superblock", patch: a.patch, token: a.token });
        return this.kickDisk(n);
      case "appendLog":
        n.disk.enqueue({ kind: "append", records: a.records, token: a.token });
        return this.kickDisk(n);
      case "truncateLog":
        n.disk.enqueue({ kind: "truncate", afterLsn: a.afterLsn, token: a.token });
        return this.kickDisk(n);
      case "resetLogForResync":
        n.disk.enqueue({ kind: "reset", snapshot: a.snapshot, sessions: a.sessions, consistentThrough: a.consistentThrough, token: a.token });
        return this.kickDisk(n);
      case "installRegion":
        n.disk.installRegion(a.region, a.data, a.version, a.copiedAt, a.blocks);
        n.disk.enqueue({ kind: "install", token: a.token });
        return this.kickDisk(n);
      case "markConsistent":
        n.disk.enqueue({ kind: "markConsistent", token: a.token });
        return this.kickDisk(n);
      case "apply":
        for (const r of n.disk.apply(a.throughLsn)) this.noteApplied(n.id, r);
        return;
      case "readBlocks": {
        // As the driver does: corrupt blocks no overlay record covers go back to the core (rule 9).
        const bad = n.disk.corruptIn(a.block, a.blockCount).filter((b) => !a.overlay.some((r) => b >= r.block && b < r.block + r.blockCount));
        if (bad.length > 0) {
          this.trace(`${n.id} read of block ${a.block}+${a.blockCount} finds corrupt blocks ${bad.join(",")}`);
          this.postLater(n, { type: "corrupt", blocks: bad.map(asBlock), read: { reqId: a.reqId, req: { type: "read", block: a.block, blockCount: a.blockCount } } });
          return;
        }
        const data = n.disk.readBlocks(a.block, a.blockCount, a.overlay);
        if (this.cfg.trace) {
          const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
          const values = Array.from({ length: a.blockCount }, (_, i) => view.getUint32(i * SIM_BLOCK_SIZE, true));
          this.trace(`${n.id} serves read of block ${a.block}+${a.blockCount}: ${values.join(",")} (applied ${n.disk.appliedLsn()}, overlay ${a.overlay.length})`);
        }
        this.replyClient(n, { reqId: a.reqId, ok: true, data });
        return;
      }
      case "sendBlock": {
        const data = n.disk.isCorrupt(a.block) ? null : n.disk.readBlocks(a.block, 1, []);
        // As the driver does: its own bad copy goes to repair too.
        if (data === null) this.postLater(n, { type: "corrupt", blocks: [a.block], read: null });
        const msg = { type: "blockData", epoch: a.epoch, seq: a.seq, block: a.block, appliedLsn: n.disk.appliedLsn(), data } as const;
        // To itself (a primary's own copy): back through its inbox, as the driver does.
        if (a.to === n.id) this.postLater(n, { type: "message", from: n.id, msg });
        else this.sendPeer(n.id, a.to, msg);
        return;
      }
      case "sendRegion": {
        const first = a.region * SIM_REGION_BLOCKS;
        const bad = n.disk.corruptIn(first, Math.min(SIM_REGION_BLOCKS, SIM_BLOCK_COUNT - first));
        if (bad.length > 0) {
          // Not sent (the target asks again); the blocks go to repair.
          this.postLater(n, { type: "corrupt", blocks: bad.map(asBlock), read: null });
          return;
        }
        const r = n.disk.readRegion(a.region, a.sinceLsn);
        this.sendPeer(n.id, a.to, { type: "region", epoch: a.epoch, region: a.region, data: r.data, blocks: r.blocks, version: r.version, copiedAt: r.copiedAt, seq: a.seq });
        this.postLater(n, { type: "regionSent", to: a.to, region: a.region, seq: a.seq, bytes: r.data.length });
        return;
      }
      case "readRegionDigests": {
        // As the driver does: in order with the applies (the sim applies at once), answered later.
        const digests = Array.from({ length: a.count }, (_, i) => n.disk.regionDigest(a.first + i));
        this.postLater(n, { type: "regionDigests", seq: a.seq, digests });
        return;
      }
      case "reply": {
        const r = a.result;
        if (r.ok) {
          const epoch = "epoch" in r ? r.epoch : undefined;
          if (epoch !== undefined && "blockCount" in r) this.history.mounts.push({ epoch, time: this.tick(), node: n.id });
          this.replyClient(n, epoch === undefined ? { reqId: a.reqId, ok: true } : { reqId: a.reqId, ok: true, epoch });
        } else {
          this.replyClient(n, r.retryAt === undefined ? { reqId: a.reqId, ok: false, code: r.code, message: r.message } : { reqId: a.reqId, ok: false, code: r.code, message: r.message, retryAt: r.retryAt });
        }
        return;
      }
      case "trace":
        if (this.cfg.trace) this.trace(`${n.id} ${a.event} ${JSON.stringify(a.detail)}`);
        return;
      default:
        throw new Error(`unknown action ${JSON.stringify(a satisfies never)}`);
    }
  }

  /**
   * State machine safety: every replica applies the same record at an lsn.
   * A replica that applied something else holds data no history explains.
   */
  private noteApplied(node: NodeId, r: LogRecord): void {
    const seen = this.appliedAt.get(r.lsn);
    if (seen === undefined) {
      this.appliedAt.set(r.lsn, { epoch: r.epoch, node });
      return;
    }
    if (seen.epoch !== r.epoch) {
      this.history.violations.push({
        promise: "P4",
        detail: `${node} applied record ${r.epoch}:${r.lsn} where ${seen.node} applied ${seen.epoch}:${r.lsn}: replicas hold different histories`,
      });
    }
  }

  /** Group commit: one round at a time; what queues meanwhile goes into the next. */
  private kickDisk(n: SimNode): void {
    if (!n.disk.startRound()) return;
    const inc = n.incarnation;
    this.at(this.rng.int(1, 4), () => {
      if (n.incarnation !== inc || n.core === null) return;
      const tokens = n.disk.finishRound();
      for (const t of tokens) this.step(n, { type: "durable", token: t });
      this.kickDisk(n);
    });
  }

  // --- Network ---------------------------------------------------------------

  private linkCut(from: string, to: string): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /**
   * Peer links lose, duplicate and reorder messages. A client's link to a
   * node is a stream, like the gRPC stream the client library holds: in
   * order, no duplicates, and once a message is lost nothing after it
   * arrives until the client reconnects (its next mount through that node).
   */
  private deliverLater(from: string, to: string, deliver: () => void, stream = false): void {
    const link = `${from}>${to}`;
    if (stream && this.brokenStreams.has(link)) return;
    if (this.linkCut(from, to) || (!this.liveness && this.rng.chance(this.lossProb))) {
      if (stream) this.brokenStreams.add(link);
      return;
    }
    const copies = !stream && !this.liveness && this.rng.chance(this.dupProb) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.chance(0.1) ? this.rng.int(5, 30) : this.rng.int(1, 3);
      if (stream) {
        const at = Math.max(this.now + delay, this.streamLast.get(link) ?? 0);
        this.streamLast.set(link, at);
        delay = at - this.now;
      }
      this.at(delay, () => {
        if (stream && this.brokenStreams.has(link)) return;
        if (this.linkCut(from, to)) {
          if (stream) this.brokenStreams.add(link);
          return;
        }
        deliver();
      });
    }
  }

  private sendPeer(from: NodeId, to: NodeId, msg: PeerMessage): void {
    this.deliverLater(from, to, () => {
      const n = this.nodes.get(to);
      if (n === undefined || n.core === null) return;
      if (this.cfg.trace && msg.type !== "append" && msg.type !== "appendReply") this.trace(`${from}->${to} ${describe(msg)}`);
      const inProgress = msg.type === "promise" && !msg.takeover ? this.takeoverInProgressOfAnother(n, msg.clientId) : null;
      const promisedBefore = msg.type === "promise" ? n.core.status().promisedEpoch : 0;
      this.step(n, { type: "message", from, msg });
      if (msg.type === "promise") this.checkTakeoverPromises(n, from, msg, promisedBefore);
      else this.forgetTakeoverGrant(n, from, msg);
      if (inProgress !== null && n.core?.status().primary?.epoch !== inProgress.epoch) {
        // Rule 3: only a takeover displaces another client's takeover in
        // progress. The fenced client's own failover that ended it was a tug
        // of war (the fault benchmark's primary-cut-from-client).
        this.history.violations.push({
          promise: "takeover",
          detail: `${to}: a mount without takeover (client ${msg.type === "promise" ? msg.clientId : "?"}) ended the takeover in progress of client ${inProgress.clientId}, epoch ${inProgress.epoch}`,
        });
      }
    });
  }

  /**
   * Rule 3 on a voter: a replica that promised another client's takeover,
   * still in progress on its candidate, grants no newer epoch to a mount
   * without takeover (within half a mount timeout of that promise, so that
   * clocks and the candidate's own deadline leave no doubt; and unless it
   * restarted since, as it keeps that promise's client in memory only).
   */
  private checkTakeoverPromises(n: SimNode, from: NodeId, msg: Extract<PeerMessage, { type: "promise" }>, promisedBefore: number): void {
    const after = n.core?.status().promisedEpoch ?? promisedBefore;
    if (msg.takeover) {
      if (!isReservedClient(msg.clientId) && after === msg.epoch && promisedBefore < msg.epoch) this.takeoverGrants.set(n.id, { epoch: msg.epoch, clientId: msg.clientId, candidate: from, at: this.now });
      return;
    }
    const g = this.takeoverGrants.get(n.id);
    if (g === undefined || g.epoch !== promisedBefore || g.clientId === msg.clientId || after <= promisedBefore || this.now - g.at >= SIM_TIMING.mountTimeoutTicks / 2) return;
    const c = this.nodes.get(g.candidate)?.core?.status().primary ?? null;
    if (c === null || c.epoch !== g.epoch || !c.takeover || c.phase === "active") return;
    this.history.violations.push({
      promise: "takeover",
      detail: `${n.id}: promised epoch ${after} to a mount without takeover (client ${msg.clientId}) while the takeover of client ${g.clientId} it promised (epoch ${g.epoch}, on ${g.candidate}) was in progress`,
    });
  }

  /**
   * Once a replica hears the takeover's primary (its mount start, or any
   * message a primary sends) or its release, the lease rule governs it,
   * which P2 and P3 judge: the check above no longer applies there.
   */
  private forgetTakeoverGrant(n: SimNode, from: NodeId, msg: PeerMessage): void {
    const g = this.takeoverGrants.get(n.id);
    if (g === undefined || from !== g.candidate || !("epoch" in msg) || msg.epoch !== g.epoch) return;
    if (PRIMARY_MESSAGES.has(msg.type) || msg.type === "release") this.takeoverGrants.delete(n.id);
  }

  /** `n`'s own takeover in progress (not yet active) for a client other than `clientId`, not a reserved one. */
  private takeoverInProgressOfAnother(n: SimNode, clientId: string): { epoch: number; clientId: string } | null {
    const p = n.core?.status().primary ?? null;
    if (p === null || p.phase === "active" || !p.takeover || p.clientId === clientId || isReservedClient(p.clientId)) return null;
    return { epoch: p.epoch, clientId: p.clientId };
  }

  private sendRequest(c: SimClient, to: NodeId, reqId: RequestId, req: ClientRequest): void {
    this.deliverLater(c.name, to, () => {
      const n = this.nodes.get(to);
      if (n === undefined || n.core === null) return;
      n.requesters.set(reqId, c.name);
      this.step(n, { type: "request", reqId, req });
    }, true);
  }

  private replyClient(n: SimNode, reply: ClientReply): void {
    const name = n.requesters.get(reply.reqId);
    if (name === undefined) return;
    n.requesters.delete(reply.reqId);
    // The primary decided to acknowledge now: P2 is judged at this instant.
    const decidedAt = this.tick();
    this.deliverLater(n.id, name, () => {
      const c = this.clients.get(name);
      if (c !== undefined) this.onReply(c, reply, decidedAt);
    }, true);
  }

  // --- Faults ----------------------------------------------------------------

  endpoints(): string[] {
    return [...this.nodes.keys(), ...this.clients.keys()];
  }

  partition(a: readonly string[], b: readonly string[], oneWay: boolean): void {
    for (const x of a) {
      for (const y of b) {
        this.cut.add(`${x}>${y}`);
        if (!oneWay) this.cut.add(`${y}>${x}`);
      }
    }
    this.trace(`PARTITION ${a.join(",")} ${oneWay ? "-/->" : "<-/->"} ${b.join(",")}`);
  }

  heal(): void {
    this.cut.clear();
    this.trace("HEAL");
  }

  setLoss(loss: number, dup: number): void {
    this.lossProb = loss;
    this.dupProb = dup;
    this.trace(`NETWORK loss ${loss.toFixed(2)} dup ${dup.toFixed(2)}`);
  }

  primaryNode(): NodeId | null {
    for (const n of this.nodes.values()) if (n.core?.isActivePrimary()) return n.id;
    return null;
  }

  // --- Clients ---------------------------------------------------------------

  /**
   * A client takes the volume over through `via` (a split-brain attempt when
   * the primary is cut off from that node): a new application instance.
   */
  takeoverVia(name: string, via: NodeId, ops: number): void {
    const c = this.clients.get(name);
    if (c === undefined) return this.addClient(name, { ops, concurrency: 2, takeover: true, via });
    if (c.state !== "fenced" && c.state !== "idle") return;
    this.newSession(c);
    c.takeover = true;
    c.opsLeft = Math.max(c.opsLeft, ops);
    this.mount(c, via);
  }

  addClient(name: string, opts: { ops: number; concurrency: number; takeover: boolean; final?: boolean; via?: NodeId }): void {
    const c: SimClient = {
      name,
      session: 0,
      clientId: "",
      state: "idle",
      via: null,
      takeover: opts.takeover,
      nextSeq: 1,
      mountReqId: null,
      mountSentAt: 0,
      unacked: [],
      reads: new Map(),
      opsLeft: opts.ops,
      concurrency: opts.concurrency,
      final: opts.final ?? false,
      finalReadsLeft: opts.final === true ? Array.from({ length: SIM_BLOCK_COUNT }, (_, i) => i) : [],
    };
    this.clients.set(name, c);
    this.newSession(c);
    if (opts.via !== undefined) this.mount(c, opts.via);
    const loop = (): void => {
      if (c.state === "done") return;
      this.clientStep(c);
      this.at(this.rng.int(2, 8), loop);
    };
    this.at(0, loop);
  }

  private newSession(c: SimClient): void {
    c.session++;
    c.clientId = `${c.name}.${c.session}`;
    c.nextSeq = 1;
    c.unacked.length = 0;
    c.reads.clear();
    c.state = "idle";
    c.via = null;
  }

  clientsQuiet(): boolean {
    for (const c of this.clients.values()) {
      if (c.final) continue;
      if (c.state === "mounting" || c.unacked.length > 0 || c.reads.size > 0) return false;
    }
    return true;
  }

  /** Replicas that took a disk fault (log bit flip or block corruption): at most N - W of them. */
  faultedReplicas(): NodeId[] {
    return [...this.flipped];
  }

  /** In-sync followers of the live mount that may have a disk fault: within the budget of N - W faulty replicas. */
  private faultableFollowers(): SimNode[] {
    const primary = this.primaryNode();
    if (primary === null) return [];
    return [...this.nodes.values()].filter(
      (n) => n.holdsReplica && n.core !== null && n.id !== primary && n.core.status().consistent && (this.flipped.has(n.id) || this.flipsLeft > 0),
    );
  }

  /**
   * The followers of the final client's live mount, which lasts until the
   * replicas compare: a lost write there is the scrub's to find. Any other
   * mount may end first (an operator's mount for a replacement unmounts once
   * the replacement is done), and so may that one while a replacement runs
   * (it may remove the primary); with no mount, no primary compares the
   * replicas' content.
   */
  private followersOfFinalMount(): SimNode[] {
    // A replacement under way may yet end the mount (its primary may be the replica it removes).
    if (this.replacing) return [];
    const p = this.primaryNode();
    const clientId = p === null ? undefined : this.nodes.get(p)?.core?.status().primary?.clientId;
    const final = [...this.clients.values()].find((c) => c.final);
    if (final === undefined || clientId !== final.clientId) return [];
    return this.faultableFollowers();
  }

  private markFaulty(n: SimNode): void {
    if (this.flipped.has(n.id)) return;
    this.flipsLeft--;
    this.flipped.add(n.id);
  }

  /** Whether no replica holds a corrupt copy in region `g` (a repair under way would rewrite the region and hide a loss there). */
  private noCorruptCopyIn(g: number): boolean {
    const first = g * SIM_REGION_BLOCKS;
    return [...this.nodes.values()].every((o) => o.disk.corruptIn(first, Math.min(SIM_REGION_BLOCKS, SIM_BLOCK_COUNT - first)).length === 0);
  }

  /**
   * A lost write on a follower of the final client's live mount: one of its regions that
   * was written loses every write (see SimDisk.loseRegion). Returns what it
   * did, or null if there was no such follower or region.
   */
  loseRegionOnFollower(rng: Random): string | null {
    const followers = this.followersOfFinalMount();
    if (followers.length === 0) return null;
    const n = rng.pick(followers);
    const written = n.disk.regionVersions().flatMap((v, i) => (v.lsn > 0 && this.noCorruptCopyIn(i) ? [i] : []));
    if (written.length === 0) return null;
    const region = rng.pick(written);
    this.markFaulty(n);
    n.disk.loseRegion(region);
    this.trace(`${n.id} LOSES every write to region ${region}; it restarts (and so reads the region's version from its disk)`);
    // The loss shows once the replica reads its disk again: a restart.
    n.core = null;
    n.incarnation++;
    n.requesters.clear();
    this.takeoverGrants.delete(n.id);
    n.disk.crash(null);
    this.at(rng.int(5, 30), () => this.restartNode(n.id));
    return `${n.id} region ${region}`;
  }

  /**
   * A lost write on a follower of the final client's live mount: one written block of it
   * holds its old content again (zeros here), checksum and all, while its
   * region's version stays (written elsewhere, it was not lost). Versions
   * compare equal: only the content digests of the scrub across replicas
   * see it. Returns what it did, or null if there was no such follower or
   * block.
   */
  loseBlockOnFollower(rng: Random): string | null {
    const followers = this.followersOfFinalMount();
    if (followers.length === 0) return null;
    const n = rng.pick(followers);
    const written = Array.from({ length: SIM_BLOCK_COUNT }, (_, b) => b).filter((b) => n.disk.blockBytes(b) !== undefined && this.noCorruptCopyIn(Math.floor(b / SIM_REGION_BLOCKS)));
    if (written.length === 0) return null;
    const block = rng.pick(written);
    this.markFaulty(n);
    n.disk.loseBlock(block);
    this.trace(`${n.id} LOSES its writes to block ${block}; its region's version stays`);
    return `${n.id} block ${block}`;
  }

  /** The final client ends its mount cleanly (its primary releases the lease). */
  unmountFinal(): void {
    for (const c of this.clients.values()) {
      if (!c.final || c.via === null) continue;
      this.trace(`${c.name} unmounts via ${c.via}`);
      this.sendRequest(c, c.via, this.nextReqId++, { type: "unmount" });
    }
  }

  finalDone(): boolean {
    for (const c of this.clients.values()) if (c.final && c.state !== "done") return false;
    return true;
  }

  /** Clients stop starting new work (the liveness phase lets the old finish). */
  quiesceClients(): void {
    for (const c of this.clients.values()) c.opsLeft = 0;
  }

  private mount(c: SimClient, via: NodeId): void {
    c.state = "mounting";
    c.via = via;
    const reqId = this.nextReqId++;
    c.mountReqId = reqId;
    c.mountSentAt = this.now;
    // A new mount is a new stream to that node.
    this.brokenStreams.delete(`${c.name}>${via}`);
    this.brokenStreams.delete(`${via}>${c.name}`);
    this.trace(`${c.name} mounts via ${via} as ${c.clientId}${c.takeover ? " (takeover)" : ""}`);
    this.sendRequest(c, via, reqId, { type: "mount", clientId: asClientId(c.clientId), takeover: c.takeover });
  }

  private clientStep(c: SimClient): void {
    const nodes = this.replicaNodes();
    switch (c.state) {
      case "idle":
        if (c.opsLeft > 0 || c.unacked.length > 0 || c.final) this.mount(c, this.rng.pick(nodes));
        return;
      case "mounting":
        if (this.now - c.mountSentAt > SIM_TIMING.mountTimeoutTicks + CLIENT_TIMEOUT) this.mount(c, this.rng.pick(nodes));
        return;
      case "fenced":
        // A fenced client does not retry; the application may start anew.
        if (c.final) {
          this.newSession(c);
          c.takeover = true;
          return;
        }
        if (c.opsLeft > 0 && this.rng.chance(0.02)) {
          this.newSession(c);
          c.takeover = this.rng.chance(0.5);
        }
        return;
      case "done":
        return;
      case "mounted":
        break;
    }
    const oldest = Math.min(...[...c.unacked, ...c.reads.values()].map((r) => r.sentAt));
    if (this.now - oldest > CLIENT_TIMEOUT) {
      // The primary seems dead or cut off: mount again through another
      // replica (the same client: failover, not takeover), replay writes.
      for (const r of c.reads.values()) this.dropRead(r);
      c.reads.clear();
      const others = nodes.filter((x) => x !== c.via);
      this.trace(`${c.name} fails over from ${c.via ?? "?"}`);
      this.mount(c, this.rng.pick(others.length > 0 ? others : nodes));
      return;
    }
    if (c.final) {
      if (c.reads.size === 0 && c.unacked.length === 0) {
        const b = c.finalReadsLeft.shift();
        if (b === undefined) {
          c.state = "done";
          return;
        }
        this.issueRead(c, b, 1);
      }
      return;
    }
    // Writes and reads each have their own window: readers do not wait for writers.
    while (c.opsLeft > 0 && c.unacked.length < c.concurrency) {
      c.opsLeft--;
      this.issueRandomOp(c);
    }
    if (c.opsLeft > 0 && c.unacked.length >= c.concurrency && c.reads.size < 2 && this.rng.chance(0.3)) {
      c.opsLeft--;
      const b = this.rng.int(0, SIM_BLOCK_COUNT - 1);
      this.issueRead(c, b, 1);
    }
  }

  private issueRandomOp(c: SimClient): void {
    const roll = this.rng.float();
    if (roll < 0.3) {
      const b = this.rng.int(0, SIM_BLOCK_COUNT - 2);
      return this.issueRead(c, b, this.rng.chance(0.3) ? 2 : 1);
    }
    if (roll < 0.4) {
      const b = this.rng.int(LINEAR_BLOCKS, SIM_BLOCK_COUNT - 1);
      const count = Math.min(this.rng.int(1, 2), SIM_BLOCK_COUNT - b);
      return this.issueWrite(c, this.rng.chance(0.5) ? "trim" : "zeroes", b, count);
    }
    const wide = this.rng.chance(0.2);
    const last = wide ? LINEAR_BLOCKS - 2 : SIM_BLOCK_COUNT - 1;
    const b = this.rng.int(0, last);
    this.issueWrite(c, "write", b, wide ? 2 : 1);
  }

  private issueWrite(c: SimClient, kind: "write" | "trim" | "zeroes", block: number, count: number): void {
    const data = kind === "write" ? new Uint8Array(count * SIM_BLOCK_SIZE) : null;
    const ops: HistoryOp[] = [];
    const t = this.tick();
    for (let i = 0; i < count; i++) {
      const value = kind === "write" ? this.nextValue++ : 0;
      if (data !== null) {
        const view = new DataView(data.buffer, i * SIM_BLOCK_SIZE, SIM_BLOCK_SIZE);
        view.setUint32(0, value, true);
        view.setUint32(4, block + i, true);
      }
      const op: HistoryOp = { client: c.clientId, kind: kind === "write" ? "write" : "zero", block: block + i, value, invoke: t, complete: null, outcome: "pending" };
      this.history.ops.push(op);
      ops.push(op);
    }
    const req: ClientRequest = { type: "write", clientId: asClientId(c.clientId), clientSeq: c.nextSeq++, kind, block: asBlock(block), blockCount: count, data };
    const inflight: InflightRequest = { reqId: this.nextReqId++, req, ops, sentAt: this.now };
    c.unacked.push(inflight);
    this.trace(`${c.name} ${kind} seq ${req.clientSeq} block ${block}+${count} values ${ops.map((o) => o.value).join(",")} via ${c.via ?? "?"}`);
    assert(c.via !== null);
    this.sendRequest(c, c.via, inflight.reqId, req);
  }

  private issueRead(c: SimClient, block: number, count: number): void {
    const t = this.tick();
    const ops: HistoryOp[] = [];
    for (let i = 0; i < count; i++) {
      const op: HistoryOp = { client: c.clientId, kind: "read", block: block + i, value: -1, invoke: t, complete: null, outcome: "pending", final: c.final };
      this.history.ops.push(op);
      ops.push(op);
    }
    const req: ClientRequest = { type: "read", block: asBlock(block), blockCount: count };
    const inflight: InflightRequest = { reqId: this.nextReqId++, req, ops, sentAt: this.now };
    c.reads.set(inflight.reqId, inflight);
    assert(c.via !== null);
    this.sendRequest(c, c.via, inflight.reqId, req);
  }

  /** A read that never returned has no effect on the history. */
  private dropRead(r: InflightRequest): void {
    for (const op of r.ops) op.outcome = "dropped";
  }

  private onReply(c: SimClient, reply: ClientReply, decidedAt: number): void {
    if (c.state === "mounting" && reply.reqId === c.mountReqId) {
      c.mountReqId = null;
      if (reply.ok) {
        c.state = "mounted";
        this.trace(`${c.name} mounted via ${c.via ?? "?"} epoch ${reply.epoch ?? "?"}`);
        // Replay unacknowledged writes in their order, with their numbers.
        for (const w of c.unacked) {
          w.sentAt = this.now;
          w.reqId = this.nextReqId++;
          assert(c.via !== null);
          this.sendRequest(c, c.via, w.reqId, w.req);
        }
        if (c.final) c.takeover = true;
        return;
      }
      this.trace(`${c.name} mount failed: ${reply.code} ${reply.message}`);
      const retry = reply.retryAt;
      if (reply.code === "VOLUME_BUSY" && !c.final) {
        // Another client's mount holds the volume or won the race: the
        // application hears VOLUME_BUSY; the library does not force it.
        this.giveUp(c);
        return;
      }
      const nodes = this.replicaNodes();
      c.state = "mounting";
      c.mountSentAt = this.now;
      this.at(this.rng.int(5, 40), () => {
        if (c.state === "mounting" && c.mountReqId === null) this.mount(c, retry ?? this.rng.pick(nodes));
      });
      return;
    }
    const wi = c.unacked.findIndex((w) => w.reqId === reply.reqId);
    if (wi >= 0) {
      const w = c.unacked[wi] as InflightRequest;
      c.unacked.splice(wi, 1);
      const t = this.tick();
      this.trace(`${c.name} seq ${w.req.type === "write" ? w.req.clientSeq : "?"} ${reply.ok ? `acked in epoch ${reply.epoch ?? "?"}` : `failed ${reply.code}`}`);
      if (reply.ok) {
        for (const op of w.ops) {
          op.outcome = "ok";
          op.complete = t;
          op.epoch = reply.epoch ?? -1;
          op.decidedAt = decidedAt;
        }
        return;
      }
      // FENCED and NO_QUORUM leave the write's fate unknown.
      for (const op of w.ops) op.outcome = "unknown";
      if (reply.code !== "FENCED" && reply.code !== "NO_QUORUM") {
        this.history.violations.push({ promise: "errors", detail: `${c.name}: unexpected ${reply.code}: ${reply.message}` });
      }
      if (reply.code === "FENCED") this.fence(c, reply.message);
      return;
    }
    const r = c.reads.get(reply.reqId);
    if (r !== undefined) {
      c.reads.delete(reply.reqId);
      const t = this.tick();
      if (!reply.ok || reply.data === undefined) {
        this.dropRead(r);
        if (!reply.ok && reply.code === "FENCED") this.fence(c, reply.message);
        return;
      }
      const view = new DataView(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength);
      r.ops.forEach((op, i) => {
        const value = view.getUint32(i * SIM_BLOCK_SIZE, true);
        const block = view.getUint32(i * SIM_BLOCK_SIZE + 4, true);
        if (value !== 0 && block !== op.block) {
          this.history.violations.push({ promise: "P5", detail: `read of block ${op.block} returned the bytes of block ${block}` });
        }
        op.value = value;
        op.outcome = "ok";
        op.complete = t;
      });
    }
  }

  private giveUp(c: SimClient): void {
    for (const w of c.unacked) for (const op of w.ops) op.outcome = "unknown";
    c.unacked.length = 0;
    for (const r of c.reads.values()) this.dropRead(r);
    c.reads.clear();
    c.mountReqId = null;
    c.state = "fenced";
  }

  private fence(c: SimClient, message: string): void {
    if (c.state !== "mounted") return;
    this.trace(`${c.name} is fenced: ${message}`);
    for (const w of c.unacked) for (const op of w.ops) op.outcome = "unknown";
    c.unacked.length = 0;
    for (const r of c.reads.values()) this.dropRead(r);
    c.reads.clear();
    c.state = "fenced";
  }

  // --- For the checker -------------------------------------------------------

  /** Whether every replica is up, consistent and has applied the same committed history. */
  converged(): { ok: boolean; why: string } {
    let commit = -1;
    const replicas = [...this.nodes.values()].filter((n) => n.holdsReplica);
    for (const n of replicas) {
      if (n.core === null) return { ok: false, why: `${n.id} is down` };
      const s = n.core.status();
      commit = Math.max(commit, s.commitLsn);
    }
    for (const n of replicas) {
      const s = (n.core as ReplicaCore).status();
      if (!s.consistent) return { ok: false, why: `${n.id} is inconsistent` };
      if (s.config.replacement !== undefined || s.config.previousReplicas !== undefined) return { ok: false, why: `${n.id}'s replica set is still changing` };
      if (s.appliedLsn !== commit) return { ok: false, why: `${n.id} applied ${s.appliedLsn} of ${commit}` };
    }
    return { ok: true, why: "" };
  }

  /** Each replica's state and block values, for a replay's trace. */
  describeReplicas(): string[] {
    const lines: string[] = [];
    for (const n of this.nodes.values()) {
      const s = n.core?.status();
      const values = Array.from({ length: SIM_BLOCK_COUNT }, (_, b) => {
        const d = n.disk.blockBytes(b);
        return d === undefined ? 0 : new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(0, true);
      });
      const regions = n.disk.regionVersions().map((v) => `${v.epoch}:${v.lsn}`).join(" ");
      lines.push(`${n.id} ${s === undefined ? "down" : `promised ${s.promisedEpoch} head ${s.head.epoch}:${s.head.lsn} commit ${s.commitLsn} applied ${s.appliedLsn} consistent ${s.consistent}`} blocks [${values.join(" ")}] regions [${regions}]`);
    }
    return lines;
  }

  compareReplicas(): string[] {
    const diffs: string[] = [];
    const nodes = [...this.nodes.values()].filter((n) => n.holdsReplica);
    const first = nodes[0] as SimNode;
    for (const n of nodes.slice(1)) {
      for (let b = 0; b < SIM_BLOCK_COUNT; b++) {
        const a = first.disk.blockBytes(b);
        const o = n.disk.blockBytes(b);
        const same = a === undefined || o === undefined ? (a ?? zero()).every((x, i) => x === (o ?? zero())[i]) : a.every((x, i) => x === o[i]);
        if (!same) diffs.push(`block ${b} differs between ${first.id} and ${n.id}`);
      }
    }
    return diffs;
  }
}

function zero(): Uint8Array {
  return new Uint8Array(SIM_BLOCK_SIZE);
}

function describe(msg: PeerMessage): string {
  const { type, epoch } = msg;
  if (msg.type === "promiseGranted") {
    return `${type} e${epoch} head ${msg.head.epoch}:${msg.head.lsn} consistent ${msg.consistent} unsure ${msg.unsurePastHead}`;
  }
  if (msg.type === "promiseRefused") return `${type} e${epoch} ${msg.reason} (promised ${msg.promisedEpoch})`;
  if (msg.type === "region") return `${type} e${epoch} region ${msg.region} copiedAt ${msg.copiedAt}`;
  return `${type} e${epoch}`;
}

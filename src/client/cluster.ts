/**
 * A connection to a replivol cluster: mounts volumes and answers the
 * administrative questions volctl asks (which nodes are up, which volumes
 * exist and how healthy they are).
 */
import { randomUUID } from "node:crypto";
import { limits } from "../core/limits.js";
import { OPERATOR_CLIENT_ID_PREFIX } from "../core/replica.js";
import { writeQuorum } from "../core/types.js";
import { loadClusterConfig, parseClusterConfig, type ClusterConfig } from "../rpc/cluster-config.js";
import { InvalidArgumentError, NoQuorumError, NotFoundError, VolumeBusyError, VolumeError } from "./errors.js";
import { clientLimits } from "./limits.js";
import { MountFailed, mountSomewhere } from "./mounter.js";
import { Volume, type VolumeHost } from "./volume.js";
import { CallError, NodeConnection, type FollowerStatusMessage, type NodeStatusMessage, type ReplicaConfigMessage, type ReplicaStatusMessage } from "./wire.js";

/** A node of the cluster: its id and `host:port`. */
export interface NodeAddress {
  readonly id: string;
  readonly address: string;
}

export interface ConnectOptions {
  /** A cluster file (YAML with `nodes: [{id, address}]`) or the node list itself. */
  readonly cluster: string | readonly NodeAddress[];
}

export interface MountOptions {
  /**
   * "rw" mounts read-write: one writer, and a live mount of another client
   * makes it fail with VolumeBusyError unless `takeover` is set. "ro" mounts
   * read-only through any in-sync replica: it fences nobody and coexists
   * with a writer, reads committed data only, and may be stale by up to
   * `Volume.staleMs` (not linearizable: after a failover to another replica
   * a read may see older data than the one before). Writes, trims and
   * write-zeroes fail with InvalidArgumentError.
   */
  readonly mode: "rw" | "ro";
  /**
   * Fence a live mount of another client (volctl `--force`). Never set by
   * the library on its own: without it a live mount fails with VolumeBusyError.
   */
  readonly takeover?: boolean;
  /**
   * The node to mount through first, by id (typically the node this process
   * runs on, whose primary then serves it over loopback); when it holds no
   * replica of the volume or cannot mount it, the others are tried in the
   * replica set's order. Failovers try it first too, unless it is the
   * primary that failed. Default: the replica set's order.
   */
  readonly via?: string;
  /** Aborts the mount attempt. */
  readonly signal?: AbortSignal;
}

export interface NodeInfo {
  readonly id: string;
  readonly address: string;
  readonly up: boolean;
  readonly uptimeMs: number | null;
  readonly rssBytes: number | null;
  readonly volumes: number | null;
  /** The node's resync rate in bytes/s; null when unthrottled or the node is down. */
  readonly resyncBytesPerSec: number | null;
  /** Why the node is counted as down. */
  readonly error: string | null;
}

export interface ReplicaInfo {
  readonly node: string;
  readonly up: boolean;
  /** "in-sync", "behind", "resyncing", "disk-failed", "down" or "unknown". */
  readonly state: string;
  readonly consistent: boolean | null;
  readonly promisedEpoch: number | null;
  readonly head: { readonly epoch: number; readonly lsn: number } | null;
  readonly commitLsn: number | null;
  /** Records behind the most advanced replica's head. */
  readonly lagRecords: number | null;
  readonly primary: boolean;
  /** The region resync of this replica under way (as its primary reports it), or null. */
  readonly resync: ResyncInfo | null;
  /** The last finished region resync of this replica since the current mount, or null. */
  readonly lastResync: { readonly regions: number; readonly bytes: number; readonly ms: number } | null;
  /** This replica's scrub, as its node reports it (null when the node is down). */
  readonly scrub: ScrubInfo | null;
  /** Rule 9 since its node started: blocks of this replica found corrupt; repairs it made as primary, and gave up. */
  readonly corruptFound: number | null;
  /** Scrub across replicas, as primary since its node started: regions whose version disagreed with a follower's (a lost write), repaired. */
  readonly divergentFound: number | null;
  readonly repairsDone: number | null;
  readonly repairsFailed: number | null;
}

export interface ScrubInfo {
  /** A full-speed pass (Cluster.scrub, volctl scrub) is under way. */
  readonly active: boolean;
  readonly regionsDone: number;
  readonly regionsTotal: number;
  /** Corrupt blocks the scrub found, over every pass since the node started. */
  readonly corruptFound: number;
  readonly passesDone: number;
}

export interface ResyncInfo {
  readonly regionsCopied: number;
  /** Regions still to copy; null while the primary is still comparing versions. */
  readonly regionsLeft: number | null;
  readonly bytesCopied: number;
  readonly elapsedMs: number;
  /** Bytes per second so far. */
  readonly rate: number;
  /** Estimated ms to go, null when unknown. */
  readonly etaMs: number | null;
}

/** A volume's replica set as the replica with the newest configuration reports it. */
export interface ReplicaSetInfo {
  readonly version: number;
  /** The voters (the new set while a replacement is joint). */
  readonly replicas: readonly string[];
  /** While a replacement is joint: the old voters; empty otherwise. */
  readonly previousReplicas: readonly string[];
  /** While a replacement builds its new replica (a learner): which replaces which. */
  readonly learner: { readonly from: string; readonly to: string } | null;
  /** Whether that replica knows this configuration committed. */
  readonly committed: boolean;
}

/** What Cluster.replaceReplica reports while it waits. */
export interface ReplaceProgress {
  readonly phase: "starting" | "learner" | "joint" | "removing" | "done";
  /** The learner's region resync, while one runs. */
  readonly resync: ResyncInfo | null;
  readonly info: VolumeInfo;
}

export interface VolumeInfo {
  readonly name: string;
  /** The replica set and any replacement under way. */
  readonly config: ReplicaSetInfo;
  readonly sizeBytes: number;
  readonly blockSize: number;
  readonly blockCount: number;
  readonly replicaNodes: readonly string[];
  /** W: a majority of the replicas. */
  readonly writeQuorum: number;
  readonly health: "healthy" | "degraded" | "unavailable";
  readonly epoch: number;
  /** Node coordinating the current mount, or null. */
  readonly primary: string | null;
  /** Client holding a live lease, or null. */
  readonly leaseHolder: string | null;
  readonly replicas: readonly ReplicaInfo[];
}

export interface CreateVolumeOptions {
  /** Bytes; a whole number of 4096-byte blocks. */
  readonly sizeBytes: number;
  /** N (default 3). */
  readonly replicas?: number;
  /** Nodes to place the replicas on (default: the up nodes holding the fewest volumes). */
  readonly nodes?: readonly string[];
}

const VOLUME_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Connects to a cluster. Nothing is contacted until the first call. */
export async function connect(options: ConnectOptions): Promise<Cluster> {
  const config = typeof options.cluster === "string" ? await loadClusterConfig(options.cluster) : parseClusterConfig(JSON.stringify({ nodes: options.cluster }), "connect({ cluster })");
  return new Cluster(config);
}

/** A connected cluster. One random clientId per Cluster: mounts carry it, and failover uses it to take over its own mount. */
export class Cluster {
  /** This client's identity, sent with every mount. */
  readonly clientId: string;
  readonly nodes: readonly NodeAddress[];
  private readonly connections = new Map<string, NodeConnection>();
  private readonly replicaNodesCache = new Map<string, string[]>();
  private readonly clientSeqs = new Map<string, number>();
  private readonly mounted = new Map<string, Volume>();
  private closed = false;
  private readonly host: VolumeHost;

  /** @internal Use `connect`. */
  /** `clientId` for operators' tools only (see OPERATOR_CLIENT_ID_PREFIX); a random id otherwise. */
  constructor(
    private readonly config: ClusterConfig,
    clientId?: string,
  ) {
    this.clientId = clientId ?? `c-${randomUUID()}`;
    this.nodes = config.nodes.map((n) => ({ id: n.id, address: n.address }));
    this.host = {
      clientId: this.clientId,
      connection: (id) => this.connection(id),
      replicaNodes: (volume, signal) => this.replicaNodes(volume, signal),
      nextClientSeq: (volume) => {
        const seq = (this.clientSeqs.get(volume) ?? 0) + 1;
        this.clientSeqs.set(volume, seq);
        return seq;
      },
      volumeClosed: (v) => {
        if (this.mounted.get(v.name) === v) this.mounted.delete(v.name);
      },
    };
  }

  /**
   * Mounts a volume. Read-write mounts fail with VolumeBusyError while
   * another client's mount is live, unless `takeover` is set.
   */
  async mount(name: string, options: MountOptions): Promise<Volume> {
    this.checkOpen();
    checkVolumeName(name);
    if (options.mode !== "rw" && options.mode !== "ro") throw new InvalidArgumentError(`Mount mode is "rw" or "ro", not ${String(options.mode)}`);
    if (this.mounted.has(name)) throw new VolumeBusyError(`Volume ${name} is already mounted by this client: close it first`);
    const via = options.via ?? null;
    if (via !== null && !this.nodes.some((n) => n.id === via)) {
      throw new InvalidArgumentError(`Mount option via names node ${via}, which the cluster file does not list: nodes are ${this.nodes.map((n) => n.id).join(", ")}`);
    }
    try {
      const mounted = await mountSomewhere(this.host, {
        volume: name,
        takeover: options.takeover === true,
        readOnly: options.mode === "ro",
        deadline: Date.now() + clientLimits.failoverTimeoutMs,
        via,
        avoid: null,
        retryBusy: false,
        attemptsMax: clientLimits.failoverAttemptsMax,
        roundsMax: 1,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      this.checkOpen();
      if (this.mounted.has(name)) throw new VolumeBusyError(`Volume ${name} is already mounted by this client: close it first`);
      const volume = new Volume(this.host, { name, readOnly: options.mode === "ro", mounted, via });
      this.mounted.set(name, volume);
      return volume;
    } catch (e) {
      if (e instanceof MountFailed) throw e.error;
      throw e;
    }
  }

  /** Closes every mounted volume (unmounting it) and every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.mounted.values()].map((v) => v.close()));
    this.closed = true;
    for (const c of this.connections.values()) c.close();
    this.connections.clear();
  }

  // -------------------------------------------------------------------------
  // Administration.

  /** Every node of the cluster file, up or down. */
  async nodeStatus(): Promise<NodeInfo[]> {
    this.checkOpen();
    return Promise.all(
      this.nodes.map(async (n): Promise<NodeInfo> => {
        try {
          const s: NodeStatusMessage = await this.connectionOf(n.id).nodeStatus();
          return { id: n.id, address: n.address, up: true, uptimeMs: s.uptimeMs, rssBytes: s.rssBytes, volumes: s.volumes, resyncBytesPerSec: s.resyncBytesPerSec === 0 ? null : s.resyncBytesPerSec, error: null };
        } catch (e) {
          return { id: n.id, address: n.address, up: false, uptimeMs: null, rssBytes: null, volumes: null, resyncBytesPerSec: null, error: messageOf(e) };
        }
      }),
    );
  }

  /**
   * Sets the resync rate (bytes/s, null: unthrottled) of the given nodes, or
   * of every node of the cluster file, at run time. Fails with the first
   * node's error; the rate lasts until the node restarts (then the cluster
   * file's `resyncBytesPerSec` applies again).
   */
  async setResyncRate(bytesPerSec: number | null, nodeIds?: readonly string[]): Promise<{ node: string; bytesPerSec: number | null }[]> {
    this.checkOpen();
    if (bytesPerSec !== null && !(Number.isSafeInteger(bytesPerSec) && bytesPerSec > 0)) {
      throw new InvalidArgumentError(`A resync rate is a whole number of bytes per second above 0, not ${bytesPerSec}`);
    }
    const ids = nodeIds ?? this.nodes.map((n) => n.id);
    for (const id of ids) if (!this.nodes.some((n) => n.id === id)) throw new NotFoundError(`Node ${id} is not in the cluster file`);
    return Promise.all(
      ids.map(async (id) => {
        try {
          const r = await this.connectionOf(id).setResyncRate(bytesPerSec ?? 0);
          return { node: id, bytesPerSec: r.bytesPerSec === 0 ? null : r.bytesPerSec };
        } catch (e) {
          throw errorOf(e);
        }
      }),
    );
  }

  /**
   * Starts a full-speed scrub pass of every replica of `name` on a node that
   * is up: every block's checksum is verified, and a corrupt block is
   * repaired from a good copy by the volume's primary (while a mount is
   * active). Returns the nodes it started on; `volumeInfo` shows progress.
   */
  async scrub(name: string): Promise<string[]> {
    this.checkOpen();
    const v = await this.volumeInfo(name);
    const up = v.replicas.filter((r) => r.up && r.state !== "unknown").map((r) => r.node);
    await Promise.all(
      up.map(async (node) => {
        try {
          await this.connectionOf(node).scrub(name);
        } catch (e) {
          throw errorOf(e);
        }
      }),
    );
    return up;
  }

  /**
   * Replaces the replica of `name` on node `from` by a new one on node `to`,
   * built from empty while the volume stays in service (rule 7, volctl
   * replace): an empty replica on `to`, then Replace asked of the volume's
   * primary, which region-resyncs the new replica as a learner, then moves
   * to the joint configuration (majorities of both sets) once it is in sync,
   * then to the new set. Then the old replica is deleted. Without a live
   * mount, this client mounts the volume and holds the mount until the
   * change is done (the primary drives it). Safe to run again after a crash
   * of anything at any step: it picks up where the replica set is.
   */
  async replaceReplica(
    name: string,
    from: string,
    to: string,
    options: { readonly onProgress?: (p: ReplaceProgress) => void; readonly timeoutMs?: number; readonly pollMs?: number } = {},
  ): Promise<VolumeInfo> {
    this.checkOpen();
    checkVolumeName(name);
    if (this.connection(to) === null) throw new NotFoundError(`Node ${to} is not in the cluster file: nodes are ${this.nodes.map((n) => n.id).join(", ")}`);
    if (from === to) throw new InvalidArgumentError(`Replace ${from} by itself? Name another node with --to`);
    const deadline = Date.now() + (options.timeoutMs ?? 24 * 3600_000);
    const pollMs = options.pollMs ?? 250;
    const isDone = (c: ReplicaSetInfo): boolean => c.committed && c.learner === null && c.previousReplicas.length === 0 && c.replicas.includes(to) && !c.replicas.includes(from);
    const ours = (c: ReplicaSetInfo): boolean => (c.learner?.from === from && c.learner.to === to) || (c.previousReplicas.includes(from) && c.replicas.includes(to) && !c.replicas.includes(from)) || isDone(c);
    let info = await this.volumeInfo(name);
    if (isDone(info.config)) {
      // Done already, unless the old replica is still to be deleted (a run cut short).
      const left = await this.connectionOf(from)
        .replicaStatus(name)
        .then(
          () => true,
          (e: unknown) => errorOf(e).code !== "NOT_FOUND",
        );
      if (!left) throw new InvalidArgumentError(`${from} holds no replica of ${name} and ${to} holds one: nothing to replace (its replicas are on ${info.config.replicas.join(", ")})`);
    }
    if (!ours(info.config)) {
      const c = info.config;
      if (c.learner !== null || c.previousReplicas.length > 0) {
        const what = c.learner !== null ? `${c.learner.from} by ${c.learner.to}` : `${c.previousReplicas.filter((n) => !c.replicas.includes(n)).join(",")} by ${c.replicas.filter((n) => !c.previousReplicas.includes(n)).join(",")}`;
        throw new VolumeBusyError(`Volume ${name} is already replacing ${what}: run that replace again to see it through`);
      }
      if (!c.replicas.includes(from)) throw new InvalidArgumentError(`Node ${from} holds no replica of ${name}: its replicas are on ${c.replicas.join(", ")}`);
      if (c.replicas.includes(to)) throw new InvalidArgumentError(`Node ${to} already holds a replica of ${name}: pick a node that does not`);
      // The new replica starts empty, a learner of the next configuration.
      try {
        await this.connectionOf(to).createReplica({
          name,
          blockCount: info.blockCount,
          blockSize: info.blockSize,
          replicas: [...c.replicas],
          configVersion: c.version + 1,
          previousReplicas: [],
          learnerFrom: from,
          learnerTo: to,
        });
      } catch (e) {
        throw errorOf(e);
      }
    }
    // With no mount live, this tool mounts the volume itself (the primary
    // drives the change), under an operator id that an application's mount
    // takes over without asking; that application's primary then goes on.
    const operator = new Cluster(this.config, `${OPERATOR_CLIENT_ID_PREFIX}${randomUUID()}`);
    let own: Volume | null = null;
    try {
      for (;;) {
        info = await this.volumeInfo(name);
        const c = info.config;
        if (isDone(c)) break;
        if (Date.now() > deadline) throw new NoQuorumError(`Replacing ${from} by ${to} in ${name} did not finish in time: run 'volctl replace ${name} --from ${from} --to ${to}' again to go on`);
        const learner = info.replicas.find((r) => r.node === to);
        const phase = c.learner !== null ? "learner" : c.previousReplicas.length > 0 ? "joint" : c.replicas.includes(from) ? "starting" : "removing";
        options.onProgress?.({ phase, resync: learner?.resync ?? null, info });
        if (c.learner === null && c.previousReplicas.length === 0) {
          // Not asked yet (or the primary that was asked lost it before it committed).
          if (info.primary === null && own === null) {
            try {
              own = await operator.mount(name, { mode: "rw" });
            } catch (e) {
              if (!(e instanceof VolumeBusyError || e instanceof NoQuorumError)) throw e;
            }
            continue;
          }
          if (info.primary !== null) {
            try {
              await this.connectionOf(info.primary).replace(name, from, to);
            } catch (e) {
              const err = errorOf(e);
              // The primary changed meanwhile, or lost its quorum: look again.
              if (err.code !== "FENCED" && err.code !== "NO_QUORUM" && err.code !== "STALE_EPOCH") throw err;
            }
            continue;
          }
        } else if (info.primary === null && own === null) {
          // A change under way needs a primary to move on.
          try {
            own = await operator.mount(name, { mode: "rw" });
          } catch (e) {
            if (!(e instanceof VolumeBusyError || e instanceof NoQuorumError)) throw e;
          }
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    } finally {
      if (own !== null) await own.close().catch(() => undefined);
      await operator.close();
    }
    // The old replica is out of every configuration: delete it (its node may
    // still be the primary for a moment, handing the mount over).
    for (let i = 0; ; i++) {
      try {
        await this.connectionOf(from).deleteReplica(name);
        break;
      } catch (e) {
        const err = errorOf(e);
        if (err.code === "NOT_FOUND") break;
        if (err.code !== "VOLUME_BUSY" || i >= 40) {
          throw new NoQuorumError(`${to} replaced ${from} in ${name}, but the old replica on ${from} could not be deleted (${err.message}): run 'volctl replace ${name} --from ${from} --to ${to}' again once ${from} is up`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    }
    this.replicaNodesCache.set(name, [...info.config.replicas]);
    info = await this.volumeInfo(name);
    options.onProgress?.({ phase: "done", resync: null, info });
    return info;
  }

  /** Every volume that any up node holds a replica of, with its health. */
  async volumes(): Promise<VolumeInfo[]> {
    this.checkOpen();
    const { byVolume, down } = await this.gatherReplicas();
    if (down.size === this.nodes.length) throw new NoQuorumError(`No node of the cluster is reachable: start the nodes, then try again`);
    return [...byVolume.keys()].sort().map((name) => summarize(name, byVolume.get(name) ?? new Map<string, ReplicaStatusMessage>(), down));
  }

  /** One volume's replicas with state, head, lag, epoch, primary and lease holder. */
  async volumeInfo(name: string): Promise<VolumeInfo> {
    this.checkOpen();
    checkVolumeName(name);
    const { byVolume, down } = await this.gatherReplicas();
    const statuses = byVolume.get(name);
    if (statuses === undefined) {
      const reachable = this.nodes.length - down.size;
      if (reachable === 0) throw new NoQuorumError(`No node of the cluster is reachable: start the nodes, then try again`);
      throw new NotFoundError(`No volume named ${name} on the ${reachable} reachable nodes: list volumes with 'volctl ls'`);
    }
    return summarize(name, statuses, down);
  }

  /** Creates a volume: one replica on each of N distinct nodes. */
  async createVolume(name: string, options: CreateVolumeOptions): Promise<VolumeInfo> {
    this.checkOpen();
    checkVolumeName(name);
    const { sizeBytes } = options;
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % limits.blockSize !== 0) {
      throw new InvalidArgumentError(`Volume size ${sizeBytes} is not a positive multiple of ${limits.blockSize} bytes`);
    }
    const blockCount = sizeBytes / limits.blockSize;
    if (blockCount > limits.volumeBlockCountMax) throw new InvalidArgumentError(`Volume size ${sizeBytes} is over the largest, ${limits.volumeBlockCountMax * limits.blockSize} bytes`);
    const replicaCount = options.replicas ?? options.nodes?.length ?? 3;
    if (!Number.isInteger(replicaCount) || replicaCount < 1 || replicaCount > limits.replicaCountMax) {
      throw new InvalidArgumentError(`A volume has 1 to ${limits.replicaCountMax} replicas, not ${replicaCount}`);
    }
    const nodes = await this.placeReplicas(replicaCount, options.nodes);
    const { byVolume } = await this.gatherReplicas();
    if (byVolume.has(name)) throw new InvalidArgumentError(`Volume ${name} already exists: pick another name, or remove it with 'volctl rm ${name}'`);
    const config = { name, blockCount, blockSize: limits.blockSize, replicas: [...nodes], configVersion: 1 };
    const created: string[] = [];
    try {
      for (const node of nodes) {
        await this.connectionOf(node).createReplica(config);
        created.push(node);
      }
    } catch (e) {
      await Promise.allSettled(created.map((node) => this.connectionOf(node).deleteReplica(name)));
      throw errorOf(e);
    }
    this.replicaNodesCache.set(name, [...nodes]);
    return this.volumeInfo(name);
  }

  /** Deletes every replica of a volume. Fails (removing what it can) if a replica node is down. */
  async deleteVolume(name: string): Promise<void> {
    this.checkOpen();
    checkVolumeName(name);
    const nodes = await this.replicaNodes(name).catch((e: unknown) => {
      throw errorOf(e);
    });
    const results = await Promise.allSettled(nodes.map((node) => this.connectionOf(node).deleteReplica(name)));
    this.replicaNodesCache.delete(name);
    const failed = nodes.filter((_, i) => {
      const r = results[i];
      return r?.status === "rejected" && errorOf(r.reason).code !== "NOT_FOUND";
    });
    if (failed.length > 0) {
      throw new NoQuorumError(`Removed ${name} from ${nodes.length - failed.length} of ${nodes.length} nodes; ${failed.join(", ")} did not answer: start them and run 'volctl rm ${name}' again`);
    }
  }

  // -------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new InvalidArgumentError("This cluster connection is closed: connect again");
  }

  private connection(id: string): NodeConnection | null {
    if (this.closed) return null;
    const existing = this.connections.get(id);
    if (existing !== undefined) return existing;
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) return null;
    const conn = new NodeConnection(node.id, node.address);
    this.connections.set(id, conn);
    return conn;
  }

  private connectionOf(id: string): NodeConnection {
    const conn = this.connection(id);
    if (conn === null) throw new NotFoundError(`Node ${id} is not in the cluster file: nodes are ${this.nodes.map((n) => n.id).join(", ")}`);
    return conn;
  }

  /** The replica set as a node holding a replica reports it; the last answer is kept for when none answers. */
  private async replicaNodes(volume: string, signal?: AbortSignal): Promise<string[]> {
    const cached = this.replicaNodesCache.get(volume) ?? [];
    const order = [...cached, ...this.nodes.map((n) => n.id).filter((id) => !cached.includes(id))];
    let reachable = 0;
    let lastError: VolumeError | null = null;
    for (const id of order) {
      signal?.throwIfAborted();
      const conn = this.connection(id);
      if (conn === null) continue;
      try {
        const status = await conn.replicaStatus(volume);
        // The voters: while a replacement is joint, the old set's too.
        const replicas = [...new Set([...(status.config?.replicas ?? []), ...(status.config?.previousReplicas ?? [])])];
        if (replicas.length > 0) {
          this.replicaNodesCache.set(volume, [...replicas]);
          return [...replicas];
        }
      } catch (e) {
        if (!(e instanceof CallError)) throw e;
        lastError = e.error;
        if (e.error.code === "NOT_FOUND") reachable++;
      }
    }
    if (cached.length > 0) return cached;
    if (reachable > 0 && lastError?.code === "NOT_FOUND") {
      throw new CallError(new NotFoundError(`No volume named ${volume} on the ${reachable} reachable nodes: create it with 'volctl create ${volume} --size ...'`), null);
    }
    if (lastError !== null && lastError.code !== "NO_QUORUM") throw new CallError(lastError, null);
    throw new CallError(
      new NoQuorumError(`No node of the cluster answered about volume ${volume} (tried ${order.join(", ")}): start the nodes, then try again`, { cause: lastError ?? undefined }),
      null,
    );
  }

  private async gatherReplicas(): Promise<{ byVolume: Map<string, Map<string, ReplicaStatusMessage>>; down: Set<string> }> {
    const answers = await Promise.all(
      this.nodes.map(async (n) => {
        try {
          return { id: n.id, replicas: (await this.connectionOf(n.id).listReplicas()).replicas };
        } catch {
          return { id: n.id, replicas: null };
        }
      }),
    );
    const byVolume = new Map<string, Map<string, ReplicaStatusMessage>>();
    const down = new Set<string>();
    for (const a of answers) {
      if (a.replicas === null) {
        down.add(a.id);
        continue;
      }
      for (const r of a.replicas) {
        const name = r.volume !== "" ? r.volume : (r.config?.name ?? "");
        if (name === "") continue;
        let m = byVolume.get(name);
        if (m === undefined) byVolume.set(name, (m = new Map<string, ReplicaStatusMessage>()));
        m.set(r.node !== "" ? r.node : a.id, r);
      }
    }
    return { byVolume, down };
  }

  private async placeReplicas(count: number, requested: readonly string[] | undefined): Promise<string[]> {
    const status = await this.nodeStatus();
    if (requested !== undefined) {
      if (requested.length !== count) throw new InvalidArgumentError(`--nodes names ${requested.length} nodes but the volume has ${count} replicas`);
      if (new Set(requested).size !== requested.length) throw new InvalidArgumentError(`--nodes names a node twice: ${requested.join(",")}`);
      for (const id of requested) {
        const s = status.find((n) => n.id === id);
        if (s === undefined) throw new NotFoundError(`Node ${id} is not in the cluster file: nodes are ${this.nodes.map((n) => n.id).join(", ")}`);
        if (!s.up) throw new NoQuorumError(`Node ${id} is down (${s.error ?? "no answer"}): start it or pick other nodes`);
      }
      return [...requested];
    }
    const up = status.filter((n) => n.up).sort((a, b) => (a.volumes ?? 0) - (b.volumes ?? 0));
    if (up.length < count) {
      throw new NoQuorumError(`A volume of ${count} replicas needs ${count} nodes up; ${up.length} of ${status.length} are: start more nodes or ask for fewer replicas`);
    }
    return up.slice(0, count).map((n) => n.id);
  }
}

function checkVolumeName(name: string): void {
  if (typeof name !== "string" || name.length === 0 || name.length > limits.volumeNameLengthMax || !VOLUME_NAME_PATTERN.test(name)) {
    throw new InvalidArgumentError(
      `Bad volume name ${JSON.stringify(name)}: use 1-${limits.volumeNameLengthMax} letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

function summarize(name: string, statuses: Map<string, ReplicaStatusMessage>, down: Set<string>): VolumeInfo {
  // The newest configuration a voter holds (a new replica's own, made by
  // volctl replace before the primary has taken it on, does not count yet).
  const votes = (s: ReplicaStatusMessage): boolean => s.config !== null && (s.config.replicas.includes(s.node) || (s.config.previousReplicas ?? []).includes(s.node));
  const newestFirst = [...statuses.values()].sort((a, b) => Number(votes(b)) - Number(votes(a)) || (b.config?.configVersion ?? 0) - (a.config?.configVersion ?? 0));
  const any = newestFirst[0];
  const config = any?.config ?? null;
  const set = replicaSetOf(config, any?.configCommitted ?? false);
  const members = [...new Set([...set.replicas, ...set.previousReplicas, ...(set.learner === null ? [] : [set.learner.to])])];
  const replicaNodes = members.length > 0 ? members : [...statuses.keys()];
  const blockSize = config?.blockSize ?? limits.blockSize;
  const blockCount = config?.blockCount ?? 0;
  const maxHead = Math.max(0, ...[...statuses.values()].map((s) => s.head?.lsn ?? 0));
  const active = [...statuses.values()].find((s) => s.primaryEpoch > 0 && s.primaryPhase === "active");
  const replicas: ReplicaInfo[] = replicaNodes.map((node) => {
    const s = statuses.get(node);
    if (s === undefined) {
      return {
        node,
        up: !down.has(node),
        state: down.has(node) ? "down" : "unknown",
        consistent: null,
        promisedEpoch: null,
        head: null,
        commitLsn: null,
        lagRecords: null,
        primary: false,
        resync: null,
        lastResync: null,
        scrub: null,
        corruptFound: null,
        divergentFound: null,
        repairsDone: null,
        repairsFailed: null,
      };
    }
    const follower = active?.followers.find((f) => f.node === node);
    const lag = maxHead - (s.head?.lsn ?? 0);
    let state: string;
    if (s.diskFailed) state = "disk-failed";
    else if (!s.consistent || follower?.resyncing === true) state = "resyncing";
    else if (lag > 0) state = "behind";
    else state = "in-sync";
    return {
      node,
      up: true,
      state,
      consistent: s.consistent,
      promisedEpoch: s.promisedEpoch,
      head: s.head === null ? null : { epoch: s.head.epoch, lsn: s.head.lsn },
      commitLsn: s.commitLsn,
      lagRecords: lag,
      primary: active !== undefined && active.node === s.node,
      resync: follower?.resyncing === true ? resyncInfo(follower) : null,
      lastResync:
        follower !== undefined && follower.lastResyncRegions > 0
          ? { regions: follower.lastResyncRegions, bytes: follower.lastResyncBytes, ms: follower.lastResyncMs }
          : null,
      scrub:
        s.scrub === null
          ? null
          : { active: s.scrub.active, regionsDone: s.scrub.regionsDone, regionsTotal: s.scrub.regionsTotal, corruptFound: s.scrub.corruptFound, passesDone: s.scrub.passesDone },
      corruptFound: s.corruptFound,
      divergentFound: s.divergentFound,
      repairsDone: s.repairsDone,
      repairsFailed: s.repairsFailed,
    };
  });
  const voters = set.replicas.length > 0 ? set.replicas : replicaNodes;
  const w = writeQuorum(voters.length);
  const usable = replicas.filter((r) => voters.includes(r.node) && r.up && r.consistent === true && r.state !== "disk-failed").length;
  const health = usable < w ? "unavailable" : replicas.every((r) => r.state === "in-sync") ? "healthy" : "degraded";
  return {
    name,
    config: set,
    sizeBytes: blockCount * blockSize,
    blockSize,
    blockCount,
    replicaNodes,
    writeQuorum: w,
    health,
    epoch: Math.max(0, ...[...statuses.values()].map((s) => s.promisedEpoch)),
    primary: active?.node ?? null,
    leaseHolder: active !== undefined && active.leaseValid && active.primaryClient !== "" ? active.primaryClient : null,
    replicas,
  };
}

function replicaSetOf(c: ReplicaConfigMessage | null, committed: boolean): ReplicaSetInfo {
  const from = c?.learnerFrom ?? "";
  const to = c?.learnerTo ?? "";
  return {
    version: c?.configVersion ?? 0,
    replicas: [...(c?.replicas ?? [])],
    previousReplicas: [...(c?.previousReplicas ?? [])],
    learner: from === "" && to === "" ? null : { from, to },
    committed,
  };
}

function resyncInfo(f: FollowerStatusMessage): ResyncInfo {
  const elapsedMs = f.resyncMs;
  const rate = elapsedMs > 0 ? Math.round((f.bytesCopied * 1000) / elapsedMs) : 0;
  // regionsLeft is 0 both before the comparison and at the very end; copied regions tell them apart.
  const comparing = f.regionsLeft === 0 && f.regionsCopied === 0;
  const regionBytes = f.regionsCopied > 0 ? f.bytesCopied / f.regionsCopied : 0;
  const etaMs = comparing || rate === 0 ? null : Math.round(((f.regionsLeft * regionBytes) / rate) * 1000);
  return { regionsCopied: f.regionsCopied, regionsLeft: comparing ? null : f.regionsLeft, bytesCopied: f.bytesCopied, elapsedMs, rate, etaMs };
}

function messageOf(e: unknown): string {
  if (e instanceof CallError) return e.error.message;
  return e instanceof Error ? e.message : String(e);
}

function errorOf(e: unknown): VolumeError {
  if (e instanceof CallError) return e.error;
  if (e instanceof VolumeError) return e;
  return new VolumeError("DISK_FAILED", messageOf(e), { cause: e });
}

/**
 * One volnode: a data directory (locked), a driver per volume replica in it,
 * the peer transport, and the gRPC server with Volume, Admin and
 * Replication. Routes by volume name to its driver.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { rm } from "node:fs/promises";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { VolumeError } from "../core/errors.js";
import { limits } from "../core/limits.js";
import { raiseServerReceiveWindows } from "../rpc/http2-window.js";
import type { PeerMessage } from "../core/messages.js";
import type { NodeId, VolumeConfig } from "../core/types.js";
import type { ClusterConfig } from "../rpc/cluster-config.js";
import { PEER_MESSAGE_BYTES_MAX, PeerTransport, replicationServiceDefinition } from "../rpc/peer-transport.js";
import { volumeServiceDefinition } from "../rpc/io-frames.js";
import { adminService as adminServiceDefinition } from "../rpc/proto.js";
import { openDataDir, type DataDir } from "../storage/data-dir.js";
import { checkVolumeName } from "../storage/disk-replica-store.js";
import type { ReplicaStore } from "../storage/replica-store.js";
import type { DiskFaultHooksForTests } from "../storage/volume-disk.js";
import { adminService, type ReplicaHost } from "./admin-service.js";
import type { Logger } from "./logger.js";
import type { TestOnlyPlantedBugs } from "../core/replica.js";
import { VolumeDriver, type VolumeDriverOptions } from "./volume-driver.js";
import { volumeService, type VolumeRouter } from "./volume-service.js";

export interface VolumeNodeOptions {
  readonly nodeId: NodeId;
  /** host:port to listen on (port 0: any free port). */
  readonly listen: string;
  readonly dataDir: string;
  readonly cluster: ClusterConfig;
  readonly logger: Logger;
  /** A replica core broke an invariant (a bug): the process should log and exit. */
  readonly onInvariantBroken: (err: unknown) => void;
  /** See VolumeDriverOptions.testOnlyPlantedBugs. */
  readonly testOnlyPlantedBugs?: TestOnlyPlantedBugs;
  /** TEST HOOK (REPLIVOL_TEST_ONLY_DISK_FAULTS): fails writes or syncs of every store as a failing disk would. */
  readonly testOnlyDiskFaults?: DiskFaultHooksForTests;
}

/** How often the node's resync rate is shared out again among the volumes it resyncs. */
const RESYNC_SHARE_INTERVAL_MS = 500;
/** How long a stopping node lets requests in flight finish. */
const STOP_GRACE_MS = 2000;
/** Largest message a client may send (an Io batch of several largest requests). */
const CLIENT_MESSAGE_BYTES_MAX = 8 * limits.requestBlocksMax * limits.blockSize;

export class VolumeNode implements VolumeRouter, ReplicaHost {
  readonly nodeId: NodeId;
  listen: string;
  readonly startedAtMs = performance.now();
  private readonly log: Logger;
  private readonly volumes = new Map<string, VolumeDriver>();
  private readonly creating = new Map<string, Promise<void>>();
  private readonly transport: PeerTransport;
  private readonly server: Server;
  /** The node's resync rate in bytes/s (null: unthrottled), shared by the volumes it resyncs as primary. */
  private resyncBytesPerSec: number | null;
  private readonly resyncShareTimer: NodeJS.Timeout;
  private port = 0;
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly opts: VolumeNodeOptions,
    private readonly dataDir: DataDir,
  ) {
    this.nodeId = opts.nodeId;
    this.resyncBytesPerSec = opts.cluster.resyncBytesPerSec;
    this.resyncShareTimer = setInterval(() => this.shareResyncRate(), RESYNC_SHARE_INTERVAL_MS);
    this.resyncShareTimer.unref();
    this.listen = opts.listen;
    this.log = opts.logger;
    this.transport = new PeerTransport({
      nodeId: opts.nodeId,
      peers: opts.cluster.nodes,
      logger: opts.logger,
      onMessage: (from, volume, msg) => this.onPeerMessage(from, volume, msg),
    });
    this.server = new Server({
      "grpc.max_receive_message_length": Math.max(PEER_MESSAGE_BYTES_MAX, CLIENT_MESSAGE_BYTES_MAX),
      "grpc.max_send_message_length": CLIENT_MESSAGE_BYTES_MAX,
    });
    this.server.addService(volumeServiceDefinition(), volumeService(this, opts.logger));
    this.server.addService(adminServiceDefinition().service, adminService(this));
    this.server.addService(replicationServiceDefinition(), { Exchange: this.transport.handleExchange });
  }

  /** Opens the data directory (taking its lock) and every volume in it, and serves. */
  static async start(opts: VolumeNodeOptions): Promise<VolumeNode> {
    const dataDir = await openDataDir(opts.dataDir);
    const node = new VolumeNode(opts, dataDir);
    try {
      for (const name of await dataDir.volumeNames()) await node.openVolume(name);
      await node.bind();
    } catch (err) {
      clearInterval(node.resyncShareTimer);
      await node.closeVolumes();
      await dataDir.close();
      throw err;
    }
    node.transport.start();
    return node;
  }

  private async openVolume(name: string): Promise<void> {
    try {
      const store = await this.dataDir.openVolume(name, this.testOnlyFaults());
      const driver = await this.openDriver(store);
      this.volumes.set(name, driver);
      const s = driver.status();
      this.log.info({ volume: name, head: `${s.head.epoch}:${s.head.lsn}`, commitLsn: s.commitLsn, consistent: s.consistent, recoveryCut: store.recoveryCut() }, "volume opened");
    } catch (err) {
      // One bad replica does not keep the node's other volumes out of service.
      this.log.error({ volume: name, err }, "volume could not be opened: not served");
    }
  }

  private testOnlyFaults(): { faults?: DiskFaultHooksForTests } {
    return this.opts.testOnlyDiskFaults === undefined ? {} : { faults: this.opts.testOnlyDiskFaults };
  }

  /** A driver over an open store; the store is closed if the driver cannot start. */
  private async openDriver(store: ReplicaStore): Promise<VolumeDriver> {
    try {
      return await VolumeDriver.open(store, this.driverOptions());
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  private driverOptions(): VolumeDriverOptions {
    return {
      nodeId: this.nodeId,
      peers: this.transport,
      logger: this.log,
      resyncBytesPerSec: this.resyncBytesPerSec,
      onInvariantBroken: this.opts.onInvariantBroken,
      ...(this.opts.testOnlyPlantedBugs === undefined ? {} : { testOnlyPlantedBugs: this.opts.testOnlyPlantedBugs }),
    };
  }

  private bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(this.opts.listen, ServerCredentials.createInsecure(), (err, port) => {
        if (err !== null) {
          reject(new VolumeError("INVALID_ARGUMENT", `Cannot listen on ${this.opts.listen}: ${err.message}`, { cause: err }));
          return;
        }
        try {
          raiseServerReceiveWindows(this.server);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        this.port = port;
        this.listen = `${this.opts.listen.slice(0, this.opts.listen.lastIndexOf(":"))}:${port}`;
        resolve();
      });
    });
  }

  // ------------------------------------------------------------- routing

  driver(volume: string): VolumeDriver {
    const d = typeof volume === "string" ? this.volumes.get(volume) : undefined;
    if (d === undefined) throw new VolumeError("NOT_FOUND", `Volume ${JSON.stringify(volume)} has no replica on node ${this.nodeId}`);
    return d;
  }

  drivers(): readonly VolumeDriver[] {
    return [...this.volumes.values()];
  }

  knownNodes(): ReadonlySet<string> {
    return new Set(this.opts.cluster.nodes.map((n) => n.id));
  }

  private onPeerMessage(from: NodeId, volume: string, msg: PeerMessage): void {
    const d = this.volumes.get(volume);
    if (d === undefined) {
      this.log.debug({ from, volume, type: msg.type }, "peer message for a volume not here dropped");
      return;
    }
    d.deliver(from, msg);
  }

  // ---------------------------------------------------------------- admin

  async createReplica(config: VolumeConfig): Promise<"created" | "exists"> {
    if (this.stopping !== null) throw new VolumeError("NO_QUORUM", `Node ${this.nodeId} is shutting down`);
    const pending = this.creating.get(config.name);
    if (pending !== undefined) await pending.catch(() => undefined);
    const existing = this.volumes.get(config.name);
    if (existing !== undefined) {
      if (sameConfig(existing.config, config)) return "exists";
      throw new VolumeError(
        "INVALID_ARGUMENT",
        `Volume ${config.name} already exists on ${this.nodeId} with another configuration: ${describeConfig(existing.config)}, not ${describeConfig(config)}`,
      );
    }
    const create = (async () => {
      const driver = await this.openDriver(await this.dataDir.openVolume(config.name, { create: config, ...this.testOnlyFaults() }));
      this.volumes.set(config.name, driver);
      this.log.info({ volume: config.name, blockCount: config.blockCount, replicas: config.replicas }, "replica created");
    })();
    this.creating.set(config.name, create);
    try {
      await create;
    } finally {
      this.creating.delete(config.name);
    }
    return "created";
  }

  async deleteReplica(volume: string): Promise<void> {
    checkVolumeName(volume);
    const d = this.driver(volume);
    if (d.activeMount() !== null) throw new VolumeError("VOLUME_BUSY", `Volume ${volume} is mounted through ${this.nodeId}: unmount it first`);
    this.volumes.delete(volume);
    await d.close();
    await rm(path.join(this.dataDir.path, "volumes", volume), { recursive: true, force: true });
    this.log.info({ volume }, "replica deleted");
  }

  // ---------------------------------------------------------------- resync

  /** The node's resync rate (bytes/s, null: unthrottled), as set now. */
  resyncRate(): number | null {
    return this.resyncBytesPerSec;
  }

  /** Sets the node's resync rate at run time (volctl resync-rate). */
  setResyncRate(bytesPerSec: number | null): void {
    if (bytesPerSec !== null && !(Number.isSafeInteger(bytesPerSec) && bytesPerSec > 0)) {
      throw new VolumeError("INVALID_ARGUMENT", `A resync rate is a whole number of bytes per second above 0, not ${bytesPerSec}`);
    }
    this.resyncBytesPerSec = bytesPerSec;
    this.log.info({ resyncBytesPerSec: bytesPerSec }, "resync rate set");
    this.shareResyncRate();
  }

  /** The node's rate, split evenly among the volumes it resyncs now. */
  private shareResyncRate(): void {
    const rate = this.resyncBytesPerSec;
    const drivers = this.drivers();
    const busy = drivers.filter((d) => d.drivesResync()).length;
    for (const d of drivers) d.setResyncRate(rate === null ? null : rate / Math.max(1, busy));
  }

  // ------------------------------------------------------------- shutdown

  /** Stops accepting, lets in-flight work finish, checkpoints and closes every store, releases the lock. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info("stopping");
    clearInterval(this.resyncShareTimer);
    this.server.unbind(this.listen);
    await Promise.all([...this.creating.values()].map((p) => p.catch(() => undefined)));
    await Promise.all(this.drivers().map((d) => d.drain(STOP_GRACE_MS)));
    this.transport.close();
    this.server.forceShutdown();
    await this.closeVolumes();
    await this.dataDir.close();
    this.log.info("stopped");
  }

  private async closeVolumes(): Promise<void> {
    const all = [...this.volumes.values()];
    this.volumes.clear();
    for (const d of all) {
      try {
        await d.close();
      } catch (err) {
        this.log.error({ volume: d.name, err }, "volume did not close cleanly");
      }
    }
  }

  boundPort(): number {
    return this.port;
  }
}

function sameConfig(a: VolumeConfig, b: VolumeConfig): boolean {
  return (
    a.name === b.name &&
    a.blockSize === b.blockSize &&
    a.blockCount === b.blockCount &&
    a.configVersion === b.configVersion &&
    a.replicas.length === b.replicas.length &&
    a.replicas.every((r, i) => r === b.replicas[i])
  );
}

function describeConfig(c: VolumeConfig): string {
  return `${c.blockCount} blocks of ${c.blockSize} bytes on ${c.replicas.join(",")} (config version ${c.configVersion})`;
}

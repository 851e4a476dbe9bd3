/** `Admin` in proto/volume.proto: replicas on this node, and the node's health. */
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { VolumeError } from "../core/errors.js";
import { limits } from "../core/limits.js";
import { configMembers } from "../core/config.js";
import { asNodeId, type VolumeConfig } from "../core/types.js";
import { toServiceError } from "../rpc/errors.js";
import type { NodeStatusReplyWire, ReplicaConfigWire, ReplicaStatusWire } from "../rpc/volume-wire.js";
import { checkVolumeConfig } from "../storage/disk-replica-store.js";
import type { VolumeDriver } from "./volume-driver.js";

export interface ReplicaHost {
  readonly nodeId: string;
  readonly listen: string;
  readonly startedAtMs: number;
  /** Node ids of the cluster file. */
  knownNodes(): ReadonlySet<string>;
  driver(volume: string): VolumeDriver;
  drivers(): readonly VolumeDriver[];
  createReplica(config: VolumeConfig): Promise<"created" | "exists">;
  deleteReplica(volume: string): Promise<void>;
  resyncRate(): number | null;
  setResyncRate(bytesPerSec: number | null): void;
}

export function configFromWire(w: ReplicaConfigWire | null | undefined, host: ReplicaHost): VolumeConfig {
  if (w === null || w === undefined) throw new VolumeError("INVALID_ARGUMENT", "CreateReplica needs a config");
  const blockSize = w.blockSize === 0 ? limits.blockSize : w.blockSize;
  if (blockSize !== limits.blockSize) throw new VolumeError("INVALID_ARGUMENT", `Block size ${blockSize} is not supported: volumes have ${limits.blockSize}-byte blocks`);
  const previous = w.previousReplicas ?? [];
  const learner = (w.learnerFrom ?? "") === "" && (w.learnerTo ?? "") === "" ? null : { from: asNodeId(w.learnerFrom ?? ""), to: asNodeId(w.learnerTo ?? "") };
  const config: VolumeConfig = {
    name: w.name,
    blockSize,
    blockCount: w.blockCount,
    replicas: w.replicas.map(asNodeId),
    configVersion: w.configVersion,
    ...(previous.length === 0 ? {} : { previousReplicas: previous.map(asNodeId) }),
    ...(learner === null ? {} : { replacement: learner }),
  };
  checkVolumeConfig(config);
  const known = host.knownNodes();
  for (const r of configMembers(config)) {
    if (!known.has(r)) throw new VolumeError("INVALID_ARGUMENT", `Replica node ${r} of volume ${config.name} is not in the cluster file`);
  }
  if (!configMembers(config).includes(asNodeId(host.nodeId))) {
    throw new VolumeError("INVALID_ARGUMENT", `Volume ${config.name} has no replica on node ${host.nodeId}: its replicas are ${config.replicas.join(", ")}`);
  }
  return config;
}

export function configToWire(c: VolumeConfig): ReplicaConfigWire {
  return {
    name: c.name,
    blockCount: c.blockCount,
    blockSize: c.blockSize,
    replicas: [...c.replicas],
    configVersion: c.configVersion,
    previousReplicas: [...(c.previousReplicas ?? [])],
    learnerFrom: c.replacement?.from ?? "",
    learnerTo: c.replacement?.to ?? "",
  };
}

export function replicaStatus(d: VolumeDriver, nodeId: string): ReplicaStatusWire {
  const s = d.status();
  return {
    volume: d.name,
    node: nodeId,
    config: configToWire(s.config),
    configCommitted: s.configCommitted,
    promisedEpoch: s.promisedEpoch,
    head: { epoch: s.head.epoch, lsn: s.head.lsn },
    commitLsn: s.commitLsn,
    appliedLsn: s.appliedLsn,
    consistent: s.consistent,
    unsurePastHead: s.unsurePastHead,
    primaryEpoch: s.primary?.epoch ?? 0,
    primaryPhase: s.primary?.phase ?? "",
    primaryClient: s.primary?.clientId ?? "",
    leaseValid: s.primary?.leaseValid ?? false,
    scrub: { ...d.scrubStatus(), lastPassMs: d.scrubStatus().lastPassMs ?? 0 },
    corruptFound: s.corruptFound,
    divergentFound: s.divergentFound,
    repairsDone: s.repairsDone,
    repairsFailed: s.repairsFailed,
    followers: s.followers.map((f) => ({
      node: f.node,
      matchLsn: f.matchLsn,
      consistent: f.consistent,
      resyncing: f.resyncing,
      regionsLeft: f.regionsLeft,
      regionsCopied: f.regionsCopied,
      bytesCopied: f.bytesCopied,
      // Ticks are the daemon's monotonic milliseconds.
      resyncMs: f.resyncTicks,
      lastResyncRegions: f.lastResync?.regions ?? 0,
      lastResyncBytes: f.lastResync?.bytes ?? 0,
      lastResyncMs: f.lastResync?.ticks ?? 0,
    })),
    diskFailed: s.diskFailed,
    regionsDirty: s.regionsDirty,
  };
}

function unary<Req, Res>(handler: (req: Req) => Promise<Res> | Res): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    let p: Promise<Res>;
    try {
      p = Promise.resolve(handler(call.request));
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    p.then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}

export function adminService(host: ReplicaHost): UntypedServiceImplementation {
  return {
    CreateReplica: unary(async (req: { config?: ReplicaConfigWire | null }) => {
      await host.createReplica(configFromWire(req.config, host));
      return {};
    }),
    DeleteReplica: unary(async (req: { volume: string }) => {
      await host.deleteReplica(req.volume);
      return {};
    }),
    ListReplicas: unary(() => ({ replicas: host.drivers().map((d) => replicaStatus(d, host.nodeId)) })),
    ReplicaStatus: unary((req: { volume: string }) => replicaStatus(host.driver(req.volume), host.nodeId)),
    NodeStatus: unary(
      (): NodeStatusReplyWire => ({
        node: host.nodeId,
        listen: host.listen,
        uptimeMs: Math.max(0, Math.floor(performance.now() - host.startedAtMs)),
        rssBytes: process.memoryUsage.rss(),
        volumes: host.drivers().length,
        resyncBytesPerSec: host.resyncRate() ?? 0,
      }),
    ),
    RegionChecksums: unary((req: { volume: string }) => host.driver(req.volume).regionChecksums()),
    BlockChecksums: unary((req: { volume: string; region: number }) => host.driver(req.volume).blockChecksums(req.region)),
    Scrub: unary((req: { volume: string }) => {
      host.driver(req.volume).startScrub();
      return {};
    }),
    Replace: unary(async (req: { volume: string; from: string; to: string }) => {
      if (!host.knownNodes().has(req.to)) throw new VolumeError("INVALID_ARGUMENT", `Node ${req.to} is not in the cluster file`);
      await host.driver(req.volume).replace(asNodeId(req.from), asNodeId(req.to));
      return {};
    }),
    SetResyncRate: unary((req: { bytesPerSec: number }) => {
      host.setResyncRate(req.bytesPerSec === 0 ? null : req.bytesPerSec);
      return { bytesPerSec: host.resyncRate() ?? 0 };
    }),
  };
}

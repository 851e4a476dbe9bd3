/**
 * replivol's client library.
 *
 * ```ts
 * import { connect } from "replivol";
 *
 * const cluster = await connect({ cluster: "cluster.yaml" });
 * const volume = await cluster.mount("demo", { mode: "rw" });
 * await volume.write(0, new TextEncoder().encode("hello"));
 * const bytes = await volume.read(0, 5);
 * await volume.close();
 * await cluster.close();
 * ```
 *
 * Every write is acknowledged once a majority of the volume's replicas hold
 * it durably. If the primary dies or is cut off, the volume fails over to
 * another replica node by itself (a pause, and a `failover` event); if
 * another client takes the volume over, every later call fails with
 * `FencedError` (and a `fenced` event).
 *
 * @packageDocumentation
 */
export {
  connect,
  Cluster,
  type ConnectOptions,
  type CreateVolumeOptions,
  type MountOptions,
  type NodeAddress,
  type NodeInfo,
  type ReplaceProgress,
  type ReplicaInfo,
  type ReplicaSetInfo,
  type ResyncInfo,
  type ScrubInfo,
  type VolumeInfo,
} from "./cluster.js";
export { Volume, type DegradedEvent, type FailoverEvent, type VolumeEvents } from "./volume.js";
export {
  clientError,
  CorruptError,
  DiskFailedError,
  FencedError,
  InvalidArgumentError,
  NoQuorumError,
  NotFoundError,
  OutOfRangeError,
  StaleEpochError,
  VolumeBusyError,
  VolumeError,
  type ErrorCode,
} from "./errors.js";
export { clientLimits, noQuorumBoundMs } from "./limits.js";

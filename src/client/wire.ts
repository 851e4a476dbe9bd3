/**
 * The client's view of proto/volume.proto: message shapes as proto-loader
 * hands them over (64-bit numbers as numbers, enums as strings, bytes as
 * Buffer) and promise-returning calls that fail with the client's error
 * classes.
 */
import { credentials, Metadata, type Client, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import { fromServiceError } from "../rpc/errors.js";
import { FLOW_CONTROL_WINDOW_BYTES } from "../rpc/http2-window.js";
import { ioMethodPath, passThrough } from "../rpc/io-frames.js";
import { adminService, volumeService } from "../rpc/proto.js";
import type {
  FollowerStatusWire,
  IoBatchOut,
  IoKindWire,
  IoReplyBatchIn,
  IoReplyIn,
  IoRequestOut,
  NodeStatusReplyWire,
  ReplicaStatusWire,
  ScrubStatusWire,
  VersionWire,
} from "../rpc/volume-wire.js";
import { asClientError, type VolumeError } from "./errors.js";
import { clientLimits } from "./limits.js";

export const RETRY_AT_METADATA_KEY = "replivol-retry-at";

export type IoKind = Exclude<IoKindWire, "IO_KIND_UNSPECIFIED">;

/** Io's messages, framed by src/rpc/io-frames.ts (shared with the node). */
export type IoRequestMessage = IoRequestOut;
export type IoBatchMessage = IoBatchOut;
export type IoReplyMessage = IoReplyIn;
export type IoReplyBatchMessage = IoReplyBatchIn;

export interface MountReplyMessage {
  epoch: number;
  blockCount: number;
  blockSize: number;
  primary: string;
}

export interface ReplicaConfigMessage {
  name: string;
  blockCount: number;
  blockSize: number;
  replicas: string[];
  configVersion: number;
  /** A replacement under way (see proto ReplicaConfig); absent or empty otherwise. */
  previousReplicas?: string[];
  learnerFrom?: string;
  learnerTo?: string;
}

export type FollowerStatusMessage = FollowerStatusWire;

/** ReplicaStatus as the client reads it: nested messages may be absent on the wire. */
export type ReplicaStatusMessage = Omit<ReplicaStatusWire, "config" | "head" | "scrub"> & {
  config: ReplicaConfigMessage | null;
  head: VersionWire | null;
  scrub: ScrubStatusWire | null;
};

export type NodeStatusMessage = NodeStatusReplyWire;

type UnaryCallback = (err: ServiceError | null, reply?: unknown) => void;
type UnaryMethod = (req: unknown, metadata: Metadata, options: { deadline: number }, callback: UnaryCallback) => { cancel(): void };

/** A failed call: the client's error class, and the node a mount should be retried through, if the node named one. */
export interface CallFailure {
  readonly error: VolumeError;
  readonly retryAt: string | null;
}

export class CallError extends Error implements CallFailure {
  override name = "CallError";
  readonly error: VolumeError;
  readonly retryAt: string | null;
  constructor(error: VolumeError, retryAt: string | null) {
    super(error.message, { cause: error });
    this.error = error;
    this.retryAt = retryAt;
  }
}

/** The client's error for a gRPC failure (transport failures become NoQuorumError). */
export function errorOfServiceError(err: ServiceError): CallError {
  const retry = err.metadata?.get(RETRY_AT_METADATA_KEY)[0];
  return new CallError(asClientError(fromServiceError(err)), typeof retry === "string" && retry !== "" ? retry : null);
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number";
}

const CHANNEL_OPTIONS = {
  "grpc.max_receive_message_length": clientLimits.receiveMessageBytesMax,
  "grpc.max_send_message_length": clientLimits.batchBytesMax + 1024 * 1024,
  // Replies of 1 MiB reads, several in flight: HTTP/2's 64 KiB default would cost a round trip each 64 KiB.
  "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW_BYTES,
  // Reconnect quickly to a node that comes back.
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
} as const;

/** One node's Volume and Admin stubs over one channel per service. */
export class NodeConnection {
  readonly id: string;
  readonly address: string;
  private readonly volume: Client;
  private readonly admin: Client;

  constructor(id: string, address: string) {
    this.id = id;
    this.address = address;
    const VolumeClient = volumeService();
    const AdminClient = adminService();
    this.volume = new VolumeClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
    this.admin = new AdminClient(address, credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  close(): void {
    this.volume.close();
    this.admin.close();
  }

  mount(req: { volume: string; clientId: string; takeover: boolean; readOnly: boolean }, timeoutMs: number, signal?: AbortSignal): Promise<MountReplyMessage> {
    return this.unary(this.volume, "Mount", req, timeoutMs, signal);
  }

  unmount(req: { volume: string; clientId: string }): Promise<object> {
    return this.unary(this.volume, "Unmount", req, clientLimits.controlCallTimeoutMs);
  }

  /** The Io stream of a mount: frames in and out (src/rpc/io-frames.ts encodes and decodes them). */
  io(): ClientDuplexStream<Buffer, Buffer> {
    return this.volume.makeBidiStreamRequest<Buffer, Buffer>(ioMethodPath(), passThrough, passThrough, new Metadata(), {});
  }

  createReplica(config: ReplicaConfigMessage): Promise<object> {
    return this.unary(this.admin, "CreateReplica", { config }, clientLimits.controlCallTimeoutMs * 3);
  }

  deleteReplica(volume: string): Promise<object> {
    return this.unary(this.admin, "DeleteReplica", { volume }, clientLimits.controlCallTimeoutMs * 3);
  }

  listReplicas(): Promise<{ replicas: ReplicaStatusMessage[] }> {
    return this.unary(this.admin, "ListReplicas", {}, clientLimits.controlCallTimeoutMs);
  }

  replicaStatus(volume: string): Promise<ReplicaStatusMessage> {
    return this.unary(this.admin, "ReplicaStatus", { volume }, clientLimits.controlCallTimeoutMs);
  }

  /** Sets the node's resync rate in bytes/s (0: unthrottled); answers the rate now in force. */
  setResyncRate(bytesPerSec: number): Promise<{ bytesPerSec: number }> {
    return this.unary(this.admin, "SetResyncRate", { bytesPerSec }, clientLimits.controlCallTimeoutMs);
  }

  /** Asks the volume's active primary on this node to replace `from` by `to`; answers once the learner configuration is committed. */
  replace(volume: string, from: string, to: string): Promise<object> {
    return this.unary(this.admin, "Replace", { volume, from, to }, clientLimits.controlCallTimeoutMs * 3);
  }

  /** Starts a full-speed scrub pass of the node's replica of `volume`. */
  scrub(volume: string): Promise<object> {
    return this.unary(this.admin, "Scrub", { volume }, clientLimits.controlCallTimeoutMs);
  }

  nodeStatus(): Promise<NodeStatusMessage> {
    return this.unary(this.admin, "NodeStatus", {}, clientLimits.controlCallTimeoutMs);
  }

  private unary<T>(client: Client, name: string, req: unknown, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    const method = (client as unknown as Record<string, UnaryMethod>)[name];
    if (method === undefined) return Promise.reject(new Error(`The service has no ${name} method: proto/ and the client disagree`));
    return new Promise<T>((resolve, reject) => {
      const call = method.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, reply) => {
        signal?.removeEventListener("abort", onAbort);
        if (err !== null) reject(isServiceError(err) ? errorOfServiceError(err) : err);
        else resolve(reply as T);
      });
      const onAbort = (): void => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

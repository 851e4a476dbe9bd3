/**
 * Node-to-node transport over `Replication.Exchange`: every node keeps one
 * outgoing stream to each peer and writes its messages there; it reads the
 * messages of each peer from the stream that peer opened to it. The sender
 * names itself in the stream's metadata.
 *
 * Messages are not guaranteed: while a stream is down they are dropped (the
 * core retransmits what matters), and a broken stream is opened again after
 * a bounded backoff.
 *
 * Links are watched, not trusted: a stream that is not answered within
 * PEER_OPEN_TIMEOUT_MS is given up and opened again (a peer that accepts TCP
 * and never answers would otherwise hold it forever), every open stream
 * carries a ping each PEER_PING_INTERVAL_MS, and a link on which nothing
 * arrives from the peer for PEER_SILENCE_TIMEOUT_MS is opened again on this
 * side and closed on the peer's (a gap in a TCP stream, a link that went
 * dark without a reset: found by the fault benchmarks). Writes are batched: messages queue per peer and go out
 * together once the code that queued them is done (a microtask), consecutive
 * appends of one volume merged into one message (see coalesceAppends). Not
 * on the next turn of the event loop: a primary's local log write is
 * started there (the store's group commit), and a small one is written and
 * synced on the event loop, so the followers would get the records only
 * after the primary's own sync; sent first, their syncs and the primary's
 * overlap.
 */
import {
  Client,
  Metadata,
  credentials,
  status,
  type ClientDuplexStream,
  type ServerDuplexStream,
  type ServiceDefinition,
  type ServiceError,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { limits } from "../core/limits.js";
import type { PeerMessage } from "../core/messages.js";
import type { LogRecord, NodeId } from "../core/types.js";
import type { ClusterNode } from "./cluster-config.js";
import { decodePeerFrame, encodePeerFrame } from "./peer-codec.js";
import { FLOW_CONTROL_WINDOW_BYTES } from "./http2-window.js";
import { replicationService } from "./proto.js";

export const NODE_METADATA_KEY = "replivol-node";

/**
 * The largest peer message accepted: well above any sent (appends and
 * fetch replies hold at most limits.appendBytesPerMessageMax of records,
 * or one record of up to 4 MiB; a region copy is one region).
 */
export const PEER_MESSAGE_BYTES_MAX = 2 * limits.logRetainedBytesMax + 4 * 1024 * 1024;
/** Messages buffered on one outgoing stream before further ones are dropped. */
const PEER_QUEUE_MESSAGES_MAX = 8192;
const RECONNECT_BACKOFF_MS_MIN = 50;
export const PEER_OPEN_TIMEOUT_MS = 5_000;
export const PEER_PING_INTERVAL_MS = 1_000;
export const PEER_SILENCE_TIMEOUT_MS = 6_000;
/** A ping: a frame with an empty header, which no message encodes to. */
const PING_FRAME = Buffer.alloc(4);

function isPing(frame: Buffer): boolean {
  return frame.length === 4 && frame.readUInt32LE(0) === 0;
}
const RECONNECT_BACKOFF_MS_MAX = 1000;
/** An outgoing stream younger than this is left to finish opening when the peer is heard from (see reconnectNow). */
const RECONNECT_NOW_AFTER_MS = 100;

export const PEER_CHANNEL_OPTIONS = {
  "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW_BYTES,
  "grpc.max_send_message_length": PEER_MESSAGE_BYTES_MAX,
  "grpc.max_receive_message_length": 4 * 1024 * 1024,
  "grpc.initial_reconnect_backoff_ms": RECONNECT_BACKOFF_MS_MIN,
  "grpc.max_reconnect_backoff_ms": RECONNECT_BACKOFF_MS_MAX,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
} as const;

export interface PeerTransportOptions {
  readonly nodeId: NodeId;
  /** The other nodes of the cluster. */
  readonly peers: readonly ClusterNode[];
  readonly logger: Logger;
  readonly onMessage: (from: NodeId, volume: string, msg: PeerMessage) => void;
}

interface PeerLink {
  readonly node: ClusterNode;
  /** Replaced when a stream is given up by the watch: its connection may be the stuck part. */
  client: Client;
  call: ClientDuplexStream<Buffer, unknown> | null;
  connected: boolean;
  readonly queue: { readonly volume: string; readonly msg: PeerMessage }[];
  flushScheduled: boolean;
  backoffMs: number;
  retry: NodeJS.Timeout | null;
  dropped: number;
  /** When the current outgoing stream was opened, and when it was answered (-Infinity: not yet). */
  openedAtMs: number;
  answeredAtMs: number;
  /** When anything last arrived from this peer (its own stream to this node). */
  heardAtMs: number;
}

export class PeerTransport {
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly incoming = new Set<ServerDuplexStream<Buffer, unknown>>();
  /** The incoming streams by peer, with when each last carried a frame. */
  private readonly incomingFrom = new Map<ServerDuplexStream<Buffer, unknown>, { readonly from: NodeId; heardAtMs: number }>();
  private readonly watch: NodeJS.Timeout;
  private readonly log: Logger;
  private closed = false;

  constructor(private readonly opts: PeerTransportOptions) {
    this.log = opts.logger.child({ component: "peer-transport" });
    for (const node of opts.peers) {
      if (node.id === opts.nodeId) continue;
      const client = new Client(node.address, credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
      this.links.set(node.id, {
        node,
        client,
        call: null,
        connected: false,
        queue: [],
        flushScheduled: false,
        backoffMs: RECONNECT_BACKOFF_MS_MIN,
        retry: null,
        dropped: 0,
        openedAtMs: -Infinity,
        answeredAtMs: -Infinity,
        heardAtMs: -Infinity,
      });
    }
    this.watch = setInterval(() => this.watchLinks(), PEER_PING_INTERVAL_MS);
    this.watch.unref();
  }

  /** Pings, and gives up streams that were never answered or went silent (see the header). */
  private watchLinks(): void {
    if (this.closed) return;
    const now = performance.now();
    for (const link of this.links.values()) {
      const call = link.call;
      if (call === null) continue;
      if (!link.connected) {
        if (now - link.openedAtMs > PEER_OPEN_TIMEOUT_MS) this.breakLink(link, call, `no answer in ${PEER_OPEN_TIMEOUT_MS} ms`, true);
        continue;
      }
      if (now - Math.max(link.answeredAtMs, link.heardAtMs) > PEER_SILENCE_TIMEOUT_MS) {
        this.breakLink(link, call, `nothing from the peer in ${PEER_SILENCE_TIMEOUT_MS} ms`, true);
        continue;
      }
      call.write(PING_FRAME);
    }
    for (const [call, peer] of this.incomingFrom) {
      if (now - peer.heardAtMs <= PEER_SILENCE_TIMEOUT_MS) continue;
      this.log.warn({ peer: peer.from }, "incoming peer stream silent: closed (the peer opens it again)");
      this.endIncoming(call);
    }
  }

  /** Opens the outgoing stream to every peer. */
  start(): void {
    for (const link of this.links.values()) this.connect(link);
  }

  send(to: NodeId, volume: string, msg: PeerMessage): void {
    const link = this.links.get(to);
    if (link === undefined || link.call === null || this.closed) return;
    if (link.queue.length + link.call.writableLength >= PEER_QUEUE_MESSAGES_MAX) {
      link.dropped++;
      return;
    }
    link.queue.push({ volume, msg });
    if (!link.flushScheduled) {
      link.flushScheduled = true;
      queueMicrotask(() => this.flush(link));
    }
  }

  /** Which peers this node's outgoing streams reach now. */
  connectedPeers(): NodeId[] {
    return [...this.links.values()].filter((l) => l.connected).map((l) => l.node.id);
  }

  private flush(link: PeerLink): void {
    link.flushScheduled = false;
    const call = link.call;
    if (call === null) {
      link.queue.length = 0;
      return;
    }
    for (const q of coalesceAppends(link.queue.splice(0))) call.write(encodePeerFrame(q.volume, q.msg));
  }

  private connect(link: PeerLink): void {
    if (this.closed) return;
    link.retry = null;
    const method = replicationService().service["Exchange"];
    if (method === undefined) throw new Error("Replication.Exchange is not in proto/replication.proto");
    const metadata = new Metadata();
    metadata.set(NODE_METADATA_KEY, this.opts.nodeId);
    // Frames are encoded before they are written (encodePeerFrame): gRPC passes the bytes through.
    const call = link.client.makeBidiStreamRequest<Buffer, unknown>(method.path, passThrough, passThrough, metadata);
    link.call = call;
    link.openedAtMs = performance.now();
    call.on("metadata", () => {
      if (link.call !== call) return;
      link.connected = true;
      link.answeredAtMs = performance.now();
      link.backoffMs = RECONNECT_BACKOFF_MS_MIN;
      this.log.info({ peer: link.node.id, address: link.node.address }, "peer stream open");
    });
    call.on("data", () => undefined);
    call.on("error", (err: ServiceError) => this.breakLink(link, call, err.details));
    call.on("status", () => this.breakLink(link, call, "stream ended"));
    call.on("end", () => this.breakLink(link, call, "stream ended"));
  }

  /** `newConnection`: the stream was given up by the watch; its HTTP/2 connection goes too (a new call would wait on it). */
  private breakLink(link: PeerLink, call: ClientDuplexStream<Buffer, unknown>, reason: string, newConnection = false): void {
    if (link.call !== call) return;
    link.call = null;
    link.queue.length = 0;
    if (link.connected || newConnection) this.log.warn({ peer: link.node.id, reason, dropped: link.dropped }, "peer stream broken");
    link.connected = false;
    call.cancel();
    if (newConnection) {
      link.client.close();
      link.client = new Client(link.node.address, credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
    }
    if (this.closed) return;
    const wait = link.backoffMs;
    link.backoffMs = Math.min(RECONNECT_BACKOFF_MS_MAX, link.backoffMs * 2);
    link.retry = setTimeout(() => this.connect(link), wait);
    link.retry.unref();
  }

  /**
   * The peer opened its stream to this node, so it is up, while this node's
   * stream to it is not: open that one now, on a new connection, instead of
   * after the rest of a backoff (up to RECONNECT_BACKOFF_MS_MAX here and as
   * much again in gRPC's channel). A restarted peer is then reached as soon
   * as it reaches us, which is what a primary waiting to resync it needs.
   */
  private reconnectNow(link: PeerLink): void {
    if (this.closed || performance.now() - link.openedAtMs < RECONNECT_NOW_AFTER_MS) return;
    if (link.retry !== null) {
      clearTimeout(link.retry);
      link.retry = null;
    }
    const call = link.call;
    link.call = null;
    link.queue.length = 0;
    // (Its handlers then see a call that is no longer the link's and leave the link alone.)
    call?.cancel();
    link.client.close();
    link.client = new Client(link.node.address, credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
    link.backoffMs = RECONNECT_BACKOFF_MS_MIN;
    this.log.info({ peer: link.node.id }, "peer is back: stream opened again now");
    this.connect(link);
  }

  private endIncoming(call: ServerDuplexStream<Buffer, unknown>): void {
    this.incomingFrom.delete(call);
    if (!this.incoming.delete(call)) return;
    try {
      call.end();
    } catch {
      // Already ended.
    }
  }

  /** The server side of Replication.Exchange: messages of the peer that opened the stream. */
  readonly handleExchange = (call: ServerDuplexStream<Buffer, unknown>): void => {
    const named = call.metadata.get(NODE_METADATA_KEY)[0];
    const from = typeof named === "string" ? (named as NodeId) : null;
    if (from === null || !this.links.has(from)) {
      this.log.warn({ peer: named ?? null, address: call.getPeer() }, "replication stream from an unknown node refused");
      call.emit("error", { code: status.PERMISSION_DENIED, details: `Node ${String(named)} is not a peer of ${this.opts.nodeId}` });
      return;
    }
    if (this.closed) {
      call.emit("error", { code: status.UNAVAILABLE, details: `Node ${this.opts.nodeId} is shutting down` });
      return;
    }
    this.incoming.add(call);
    const back = this.links.get(from);
    if (back !== undefined && !back.connected) this.reconnectNow(back);
    const heard = { from, heardAtMs: performance.now() };
    this.incomingFrom.set(call, heard);
    call.sendMetadata(new Metadata());
    let bad = 0;
    call.on("data", (frame: Buffer) => {
      heard.heardAtMs = performance.now();
      const link = this.links.get(from);
      if (link !== undefined) link.heardAtMs = heard.heardAtMs;
      if (isPing(frame)) return;
      let decoded: ReturnType<typeof decodePeerFrame>;
      try {
        decoded = decodePeerFrame(frame);
      } catch (err) {
        if (bad++ < 10) this.log.warn({ peer: from, err: (err as Error).message }, "peer message dropped");
        return;
      }
      this.opts.onMessage(from, decoded.volume, decoded.msg);
    });
    const done = (): void => this.endIncoming(call);
    call.on("end", done);
    call.on("error", done);
    call.on("cancelled", done);
  };

  close(): void {
    this.closed = true;
    clearInterval(this.watch);
    for (const link of this.links.values()) {
      if (link.retry !== null) clearTimeout(link.retry);
      const call = link.call;
      link.call = null;
      call?.cancel();
      link.client.close();
    }
    for (const call of [...this.incoming]) this.endIncoming(call);
  }
}

const passThrough = (b: Buffer): Buffer => b;

/** Replication's service definition for a server: frames pass through gRPC as bytes, decoded by the transport. */
export function replicationServiceDefinition(): ServiceDefinition {
  const def = replicationService().service;
  const method = def["Exchange"];
  if (method === undefined) throw new Error("Replication.Exchange is not in proto/replication.proto");
  return {
    ...def,
    Exchange: { ...method, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough },
  };
}

/**
 * Merges consecutive appends to one peer of the same volume and epoch, where
 * each follows the records of the one before, into one append: the
 * follower ends in the state the separate appends would leave it in (the
 * same records, the later commit point) and answers once. The merged
 * message carries the later send time (`seq`): it leaves no earlier than
 * that, so the lease it renews is no longer than the separate ones.
 * The core sends one append per record as writes arrive; this is where
 * they become batches.
 */
export function coalesceAppends(queue: readonly { volume: string; msg: PeerMessage }[]): { volume: string; msg: PeerMessage }[] {
  const out: { volume: string; msg: PeerMessage }[] = [];
  // The append last built here (always the last of out): its records array is this function's own to extend, not a queued message's.
  let own: PeerMessage | null = null;
  let bytes = 0;
  for (const q of queue) {
    const last = out[out.length - 1];
    const m = q.msg;
    if (last !== undefined && last.volume === q.volume && last.msg.type === "append" && m.type === "append" && last.msg.epoch === m.epoch) {
      const a = last.msg;
      const tail = a.records[a.records.length - 1];
      const end = tail === undefined ? a.prev : { epoch: tail.epoch, lsn: tail.lsn };
      let add = 0;
      for (const r of m.records) add += r.data?.length ?? 0;
      const fits = a.records.length + m.records.length <= limits.appendRecordsPerMessageMax && bytes + add <= limits.appendBytesPerMessageMax;
      if (end.epoch === m.prev.epoch && end.lsn === m.prev.lsn && fits) {
        // Extended in place once built: copying the records on every merge made a batch of n appends cost n^2.
        const records: LogRecord[] = own === a ? (a.records as LogRecord[]) : [...a.records];
        for (const r of m.records) records.push(r);
        const msg: PeerMessage = { ...a, records, commitLsn: m.commitLsn > a.commitLsn ? m.commitLsn : a.commitLsn, seq: Math.max(a.seq, m.seq) };
        own = msg;
        out[out.length - 1] = { volume: q.volume, msg };
        bytes += add;
        continue;
      }
    }
    out.push(q);
    bytes = 0;
    if (m.type === "append") for (const r of m.records) bytes += r.data?.length ?? 0;
  }
  return out;
}

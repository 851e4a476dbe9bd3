/**
 * A mounted volume: one Io stream to its primary, requests batched per
 * stream message under a bounded window, and failover to another replica
 * node that replays every unacknowledged write with its clientSeq.
 */
import { EventEmitter } from "node:events";
import type { ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { assert } from "../core/assert.js";
import { isErrorCode } from "../core/errors.js";
import { splitByteRange } from "./byte-range.js";
import { clientError, FencedError, InvalidArgumentError, NoQuorumError, OutOfRangeError, VolumeBusyError, type VolumeError } from "./errors.js";
import { clientLimits } from "./limits.js";
import { MountFailed, mountSomewhere, type MountHost, type Mounted } from "./mounter.js";
import { decodeIoReplyBatch, encodeIoBatch } from "../rpc/io-frames.js";
import { errorOfServiceError, type IoBatchMessage, type IoKind, type IoReplyBatchMessage, type IoRequestMessage } from "./wire.js";

/** What a `failover` event reports. */
export interface FailoverEvent {
  /** Node that coordinated the mount before. */
  readonly from: string;
  /** Node that coordinates it now. */
  readonly to: string;
  readonly previousEpoch: number;
  readonly epoch: number;
  /** Why the library failed over. */
  readonly reason: string;
  /** How long I/O was paused. */
  readonly pauseMs: number;
  /** Unacknowledged write-like requests sent again (with their clientSeq). */
  readonly replayedWrites: number;
  /** Unanswered reads and flushes sent again. */
  readonly resentReads: number;
}

/** What a `degraded` event reports: the volume cannot take writes right now, or lost a replica. */
export interface DegradedEvent {
  readonly reason: "no-quorum" | "replica-lost";
  readonly message: string;
}

export interface VolumeEvents {
  /** The mount was taken over by another client; every later call fails with FencedError. */
  fenced: [error: FencedError];
  /** The primary died or was cut off and the mount moved to another node; I/O paused, nothing failed. */
  failover: [event: FailoverEvent];
  /** Writes fail for lack of a quorum, or a replica node was lost in a failover. */
  degraded: [event: DegradedEvent];
}

type OpKind = "read" | "write" | "trim" | "writeZeroes" | "flush";

const IO_KIND_OF: Record<OpKind, IoKind> = {
  read: "IO_KIND_READ",
  write: "IO_KIND_WRITE",
  trim: "IO_KIND_TRIM",
  writeZeroes: "IO_KIND_WRITE_ZEROES",
  flush: "IO_KIND_FLUSH",
};

interface Op {
  readonly kind: OpKind;
  readonly offset: number;
  readonly length: number;
  readonly data: Uint8Array | null;
  /** 0 for reads and flushes; write-like requests keep theirs across replays. */
  readonly clientSeq: number;
  /** Creation order. */
  readonly order: number;
  /** Bytes it holds of the in-flight window. */
  readonly windowBytes: number;
  /** Request id on the current stream, 0 when not sent. */
  id: number;
  sentAt: number;
  /** It was answered NO_QUORUM once and sent again after a failover: a second NO_QUORUM fails it. */
  noQuorumSeen: boolean;
  readonly settle: (result: Uint8Array | VolumeError) => void;
}

type VolumeState = "mounted" | "failingOver" | "detached" | "fenced" | "closed";

/** Internal: what a Volume needs from its Cluster. */
export interface VolumeHost extends MountHost {
  nextClientSeq(volume: string): number;
  volumeClosed(volume: Volume): void;
}

export interface VolumeInit {
  readonly name: string;
  readonly readOnly: boolean;
  readonly mounted: Mounted;
  /** MountOptions.via: failovers try it first too (unless it is the primary that failed). */
  readonly via: string | null;
}

const isWriteLike = (k: OpKind): boolean => k === "write" || k === "trim" || k === "writeZeroes";

/**
 * A volume mounted through the cluster. Byte-addressed: any offset and
 * length within `size`. Operations issued without awaiting run in the order
 * they were issued. Survives the loss of its primary by failing over (emits
 * `failover`); a takeover by another client fences it (emits `fenced`).
 */
export class Volume extends EventEmitter<VolumeEvents> {
  /** The volume's name. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** Bytes per block; I/O need not be aligned to it, but aligned I/O avoids read-modify-write at the primary. */
  readonly blockSize: number;
  readonly readOnly: boolean;

  private readonly host: VolumeHost;
  private readonly via: string | null;
  private state: VolumeState = "mounted";
  private currentEpoch: number;
  private primaryNode: string;
  private stream: ClientDuplexStream<Buffer, Buffer> | null = null;
  private streamGeneration = 0;
  private streamBound = false;
  private waitingForDrain = false;
  private pumpScheduled = false;
  private readonly queue: Op[] = [];
  private readonly inFlight = new Map<number, Op>();
  private inFlightBytes = 0;
  private nextRequestId = 1;
  private nextOrder = 1;
  private fencedBy: FencedError | null = null;
  private lastStaleMs = 0;
  private readonly watchdog: NodeJS.Timeout;

  /** @internal Created by `Cluster.mount`. */
  constructor(host: VolumeHost, init: VolumeInit) {
    super();
    this.host = host;
    this.name = init.name;
    this.readOnly = init.readOnly;
    this.via = init.via;
    const r = init.mounted.reply;
    assert(r.blockSize > 0 && Number.isSafeInteger(r.blockCount * r.blockSize), `Mount of ${init.name} reported a bad size`);
    this.blockSize = r.blockSize;
    this.size = r.blockCount * r.blockSize;
    this.currentEpoch = r.epoch;
    this.primaryNode = r.primary !== "" ? r.primary : init.mounted.node;
    this.openStream(init.mounted.node);
    this.watchdog = setInterval(() => this.checkReplyTimeout(), 500);
    this.watchdog.unref();
  }

  /** The epoch of the current mount; it changes when the library fails over. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /**
   * Read-only mounts: how stale the data of the last read may have been, in
   * milliseconds (the time since the replica that served it last heard from
   * a primary; 0 when it was the primary). Always 0 for a read-write mount,
   * whose reads are linearizable.
   */
  get staleMs(): number {
    return this.lastStaleMs;
  }

  /** The node coordinating the mount (the replica serving a read-only one). */
  get primary(): string {
    return this.primaryNode;
  }

  /** Reads `length` bytes at byte `offset`. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    this.checkRange("read", offset, length);
    const ranges = splitByteRange(offset, length, this.blockSize, clientLimits.requestBlocksMax);
    const parts = await Promise.all(ranges.map((r) => this.submit("read", r.offset, r.length, null)));
    if (parts.length === 1 && parts[0] !== undefined) return parts[0];
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Writes `data` at byte `offset`; resolves once a majority of replicas hold it durably. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError(`Write to ${this.name} needs a Uint8Array (or Buffer) of data`);
    this.checkRange("write", offset, data.length);
    this.checkWritable();
    const ranges = splitByteRange(offset, data.length, this.blockSize, clientLimits.requestBlocksMax);
    await Promise.all(ranges.map((r) => this.submit("write", r.offset, r.length, data.subarray(r.offset - offset, r.offset - offset + r.length))));
  }

  /**
   * Discards the whole blocks inside `[offset, offset + length)`: they read
   * back as zeroes. Trim is advice: partial blocks at the edges keep their bytes.
   */
  async trim(offset: number, length: number): Promise<void> {
    await this.writeLike("trim", offset, length);
  }

  /** Writes `length` zero bytes at `offset` without sending them. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    await this.writeLike("writeZeroes", offset, length);
  }

  /**
   * Resolves once every write issued before it is acknowledged. Writes are
   * durable on a majority when acknowledged, so this is an ordering barrier.
   */
  async flush(): Promise<void> {
    this.checkUsable();
    const earlier = [...this.queue, ...this.inFlight.values()].filter((op) => isWriteLike(op.kind));
    const waits = earlier.map((op) => new Promise<void>((resolve) => this.onceSettled(op, resolve)));
    await Promise.all([this.submit("flush", 0, 0, null), ...waits]);
  }

  /**
   * Waits for issued I/O to finish, unmounts (releasing the lease so another
   * client can mount at once) and closes the stream. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.state === "mounted" || this.state === "failingOver") {
      await Promise.allSettled([...this.queue, ...this.inFlight.values()].map((op) => new Promise<void>((resolve) => this.onceSettled(op, resolve))));
    }
    const wasMounted = this.state === "mounted";
    this.state = "closed";
    clearInterval(this.watchdog);
    this.dropStream();
    this.failAll(new InvalidArgumentError(`Volume ${this.name} is closed: mount it again`));
    // A read-only mount holds nothing at the node: nothing to end (and an
    // Unmount would end a read-write mount of this same client).
    if (wasMounted && !this.readOnly) {
      const conn = this.host.connection(this.primaryNode);
      try {
        await conn?.unmount({ volume: this.name, clientId: this.host.clientId });
      } catch {
        // The lease runs out on its own; unmounting only ends it early.
      }
    }
    this.host.volumeClosed(this);
  }

  // -------------------------------------------------------------------------

  private async writeLike(kind: "trim" | "writeZeroes", offset: number, length: number): Promise<void> {
    this.checkRange(kind, offset, length);
    this.checkWritable();
    const ranges = splitByteRange(offset, length, this.blockSize, clientLimits.requestBlocksMax);
    await Promise.all(ranges.map((r) => this.submit(kind, r.offset, r.length, null)));
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new InvalidArgumentError(`Cannot ${what} ${this.name} at offset ${offset}, length ${length}: both must be whole numbers of bytes, not negative`);
    }
    if (offset + length > this.size) {
      throw new OutOfRangeError(`Cannot ${what} ${this.name} at bytes ${offset}..${offset + length}: the volume has ${this.size} bytes`);
    }
  }

  private checkWritable(): void {
    if (this.readOnly) throw new InvalidArgumentError(`Volume ${this.name} is mounted read-only: mount it with mode "rw" to write`);
  }

  private checkUsable(): void {
    if (this.fencedBy !== null) throw new FencedError(this.fencedBy.message, { cause: this.fencedBy });
    if (this.state === "closed") throw new InvalidArgumentError(`Volume ${this.name} is closed: mount it again`);
  }

  private submit(kind: OpKind, offset: number, length: number, data: Uint8Array | null): Promise<Uint8Array> {
    this.checkUsable();
    return new Promise<Uint8Array>((resolve, reject) => {
      const op: Op = {
        kind,
        offset,
        length,
        data,
        clientSeq: isWriteLike(kind) ? this.host.nextClientSeq(this.name) : 0,
        order: this.nextOrder++,
        windowBytes: kind === "flush" ? 0 : length,
        id: 0,
        sentAt: 0,
        noQuorumSeen: false,
        settle: (result) => (result instanceof Uint8Array ? resolve(result) : reject(result)),
      };
      if (length === 0 && kind !== "flush") {
        op.settle(new Uint8Array(0));
        return;
      }
      this.queue.push(op);
      if (this.state === "detached") this.startFailover("the last failover found no quorum; trying again for new I/O");
      else this.schedulePump();
    });
  }

  private readonly settledWaiters = new Map<Op, (() => void)[]>();

  private onceSettled(op: Op, callback: () => void): void {
    const list = this.settledWaiters.get(op);
    if (list === undefined) this.settledWaiters.set(op, [callback]);
    else list.push(callback);
  }

  private settle(op: Op, result: Uint8Array | VolumeError): void {
    op.settle(result);
    const waiters = this.settledWaiters.get(op);
    if (waiters !== undefined) {
      this.settledWaiters.delete(op);
      for (const w of waiters) w();
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // A microtask, not the next turn of the event loop: requests submitted
    // together (in one synchronous run and the promise reactions after it)
    // still go out as one batch, and a lone request leaves at once.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Sends queued requests, a batch per stream message, while the window and the stream allow. */
  private pump(): void {
    const stream = this.stream;
    if (this.state !== "mounted" || stream === null || this.waitingForDrain) return;
    while (this.queue.length > 0) {
      const requests: IoRequestMessage[] = [];
      let batchBytes = 0;
      while (this.queue.length > 0 && requests.length < clientLimits.batchRequestsMax) {
        const op = this.queue[0];
        assert(op !== undefined);
        const payload = op.data?.length ?? 0;
        if (requests.length > 0 && batchBytes + payload > clientLimits.batchBytesMax) break;
        const windowFull = this.inFlight.size >= clientLimits.inFlightRequestsMax || (this.inFlight.size > 0 && this.inFlightBytes + op.windowBytes > clientLimits.inFlightBytesMax);
        if (windowFull) break;
        this.queue.shift();
        op.id = this.nextRequestId++;
        op.sentAt = Date.now();
        this.inFlight.set(op.id, op);
        this.inFlightBytes += op.windowBytes;
        batchBytes += payload;
        const req: IoRequestMessage = { id: op.id, kind: IO_KIND_OF[op.kind], offset: op.offset, length: op.length, clientSeq: op.clientSeq };
        if (op.data !== null) req.data = op.data;
        requests.push(req);
      }
      if (requests.length === 0) return;
      const more = stream.write(encodeIoBatch(this.batch(requests)));
      if (!more) {
        this.waitingForDrain = true;
        const generation = this.streamGeneration;
        stream.once("drain", () => {
          if (generation !== this.streamGeneration) return;
          this.waitingForDrain = false;
          this.pump();
        });
        return;
      }
    }
  }

  private batch(requests: IoRequestMessage[]): IoBatchMessage {
    const first = !this.streamBound;
    this.streamBound = true;
    return { volume: first ? this.name : "", clientId: first ? this.host.clientId : "", epoch: this.currentEpoch, requests, readOnly: first && this.readOnly };
  }

  private openStream(node: string): void {
    const conn = this.host.connection(node);
    assert(conn !== null, `Node ${node} coordinates ${this.name} but is not in the cluster file`);
    const generation = ++this.streamGeneration;
    const stream = conn.io();
    this.stream = stream;
    this.streamBound = false;
    this.waitingForDrain = false;
    stream.on("data", (frame: Buffer) => {
      if (generation !== this.streamGeneration) return;
      let batch: IoReplyBatchMessage;
      try {
        batch = decodeIoReplyBatch(frame);
      } catch (err) {
        this.startFailover(`${node} sent a reply that does not decode: ${(err as Error).message}`);
        return;
      }
      this.onReplies(batch);
    });
    stream.on("error", (err: ServiceError) => {
      if (generation !== this.streamGeneration) return;
      const e = errorOfServiceError(err).error;
      if (e.code === "FENCED" || e.code === "STALE_EPOCH") this.fence(e);
      else this.startFailover(`the stream to ${node} failed: ${e.message}`);
    });
    stream.on("end", () => {
      if (generation === this.streamGeneration) this.startFailover(`${node} ended the stream`);
    });
    // Binds the stream to the mount at once, so a node that cannot serve it says so before any I/O.
    stream.write(encodeIoBatch(this.batch([])));
    this.schedulePump();
  }

  private dropStream(): void {
    this.streamGeneration++;
    const stream = this.stream;
    this.stream = null;
    this.waitingForDrain = false;
    if (stream !== null) {
      stream.on("error", () => undefined);
      stream.cancel();
    }
  }

  private onReplies(batch: IoReplyBatchMessage): void {
    for (const r of batch.replies) {
      const op = this.inFlight.get(r.id);
      if (op === undefined) continue;
      this.inFlight.delete(r.id);
      this.inFlightBytes -= op.windowBytes;
      if (r.ok) {
        if (op.kind === "read") {
          if (this.readOnly) this.lastStaleMs = r.staleMs;
          if (r.data.length !== op.length) {
            this.settle(op, new InvalidArgumentError(`Read of ${this.name} at ${op.offset} returned ${r.data.length} bytes, not ${op.length}: the node and the client disagree`));
          } else {
            this.settle(op, new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength));
          }
        } else {
          this.settle(op, new Uint8Array(0));
        }
        continue;
      }
      const code = isErrorCode(r.code) ? r.code : "INVALID_ARGUMENT";
      const error = clientError(code, r.message !== "" ? r.message : `${code} from ${this.primaryNode}`);
      if (code === "FENCED" || code === "STALE_EPOCH") {
        this.queue.unshift(op);
        this.fence(error);
        return;
      }
      if (code === "NO_QUORUM" && !op.noQuorumSeen) {
        // The primary may be cut off from its peers while another node can
        // still gather a majority: fail over and send the request again.
        op.noQuorumSeen = true;
        op.id = 0;
        this.queue.unshift(op);
        this.startFailover(`${this.primaryNode} answered: ${error.message}`);
        continue;
      }
      if (code === "NO_QUORUM") this.emit("degraded", { reason: "no-quorum", message: error.message });
      this.settle(op, error);
    }
    this.schedulePump();
  }

  private checkReplyTimeout(): void {
    if (this.state !== "mounted") return;
    const now = Date.now();
    for (const op of this.inFlight.values()) {
      // The map is in send order: the first one is the oldest.
      if (now - op.sentAt > clientLimits.replyTimeoutMs) this.startFailover(`${this.primaryNode} answered nothing for ${clientLimits.replyTimeoutMs} ms`);
      return;
    }
  }

  private fence(error: VolumeError): void {
    if (this.state === "fenced" || this.state === "closed") return;
    const fenced = error instanceof FencedError ? error : new FencedError(`Volume ${this.name} was taken over by another client: ${error.message}`, { cause: error });
    this.state = "fenced";
    this.fencedBy = fenced;
    this.dropStream();
    this.failAll(fenced);
    this.emit("fenced", fenced);
  }

  private failAll(error: VolumeError): void {
    const ops = [...this.inFlight.values(), ...this.queue];
    this.inFlight.clear();
    this.inFlightBytes = 0;
    this.queue.length = 0;
    for (const op of ops) this.settle(op, error instanceof FencedError ? new FencedError(error.message, { cause: error }) : error);
  }

  private startFailover(reason: string): void {
    if (this.state !== "mounted" && this.state !== "detached") return;
    this.state = "failingOver";
    this.failover(reason).catch((e: unknown) => {
      // Not a lost quorum but a bug or a closed cluster: fail what waits, keep no stream.
      if (this.state === "closed" || this.state === "fenced") return;
      this.state = "detached";
      this.dropStream();
      this.failAll(new NoQuorumError(`Failover of ${this.name} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
    });
  }

  /**
   * Mounts again through another replica node with the same clientId and no
   * takeover, then sends every unacknowledged write again in clientSeq order
   * (the new primary acknowledges those the history already holds), then the
   * unanswered reads, then whatever was queued.
   */
  private async failover(reason: string): Promise<void> {
    const startedAt = Date.now();
    const from = this.primaryNode;
    const previousEpoch = this.currentEpoch;
    this.dropStream();
    const unanswered = [...this.inFlight.values()];
    this.inFlight.clear();
    this.inFlightBytes = 0;
    const queuedAgain = this.queue.filter((op) => op.noQuorumSeen && op.id === 0);
    const rest = this.queue.filter((op) => !queuedAgain.includes(op));
    const again = [...unanswered, ...queuedAgain];
    const writes = again.filter((op) => isWriteLike(op.kind)).sort((a, b) => a.clientSeq - b.clientSeq);
    const reads = again.filter((op) => !isWriteLike(op.kind)).sort((a, b) => a.order - b.order);
    this.queue.length = 0;
    this.queue.push(...writes, ...reads, ...rest);
    for (const op of this.queue) op.id = 0;

    let mounted: Mounted;
    try {
      mounted = await mountSomewhere(this.host, {
        volume: this.name,
        takeover: false,
        readOnly: this.readOnly,
        deadline: startedAt + clientLimits.failoverTimeoutMs,
        via: this.via,
        avoid: from,
        retryBusy: true,
        attemptsMax: clientLimits.failoverAttemptsMax,
        roundsMax: Infinity,
      });
    } catch (e) {
      if (this.state !== "failingOver") return;
      const error = e instanceof MountFailed ? e.error : new NoQuorumError(`Failover of ${this.name} failed: ${String(e)}`, { cause: e });
      if (error.code === "FENCED" || error.code === "STALE_EPOCH" || error instanceof VolumeBusyError) {
        // Another client's live mount holds the volume now: it took it over.
        this.fence(error);
        return;
      }
      this.state = "detached";
      const noQuorum = new NoQuorumError(
        `Volume ${this.name} lost its primary (${reason}) and no replica node could mount it within ${clientLimits.failoverTimeoutMs} ms: ` +
          `unacknowledged writes may or may not have been written; start the nodes that are down and retry`,
        { cause: error },
      );
      this.emit("degraded", { reason: "no-quorum", message: noQuorum.message });
      this.failAll(noQuorum);
      return;
    }
    if (this.state !== "failingOver") return;
    this.currentEpoch = mounted.reply.epoch;
    this.primaryNode = mounted.reply.primary !== "" ? mounted.reply.primary : mounted.node;
    this.state = "mounted";
    this.openStream(mounted.node);
    if (this.primaryNode !== from || this.currentEpoch !== previousEpoch) {
      this.emit("failover", {
        from,
        to: this.primaryNode,
        previousEpoch,
        epoch: this.currentEpoch,
        reason,
        pauseMs: Date.now() - startedAt,
        replayedWrites: writes.length,
        resentReads: reads.length,
      });
      if (this.primaryNode !== from) this.emit("degraded", { reason: "replica-lost", message: `The primary of ${this.name} moved from ${from} to ${this.primaryNode}: ${reason}` });
    }
  }
}

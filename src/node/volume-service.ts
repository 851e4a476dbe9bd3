/**
 * The client data path, `Volume` in proto/volume.proto: Mount, the Io
 * stream of a mount, Unmount. Byte ranges become whole-block core requests
 * here; a partial-block write is read-modify-written, and the requests of
 * the stream after it wait until it is sequenced, so writes stay in order.
 */
import { Metadata, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { VolumeError } from "../core/errors.js";
import { limits } from "../core/limits.js";
import { OPERATOR_CLIENT_ID_PREFIX, RESERVED_CLIENT_ID_PREFIX } from "../core/replica.js";
import type { RequestFailure } from "../core/messages.js";
import { asBlock, asClientId, type ClientId, type Epoch, type NodeId } from "../core/types.js";
import { toServiceError } from "../rpc/errors.js";
import {
  RETRY_AT_METADATA_KEY,
  type IoBatchWire,
  type IoReplyWire,
  type IoRequestWire,
  type MountReplyWire,
  type MountRequestWire,
  type UnmountRequestWire,
} from "../rpc/volume-wire.js";
import { decodeIoBatch, encodeIoReplyBatch } from "../rpc/io-frames.js";
import { checkByteRange, isAligned, mergePartialWrite, type BlockSpan } from "./byte-range.js";
import type { Logger } from "./logger.js";
import { BufferPool } from "../storage/buffer-pool.js";
import { readBuffers } from "../storage/read-buffers.js";
import type { VolumeDriver } from "./volume-driver.js";

export interface VolumeRouter {
  readonly nodeId: NodeId;
  /** The replica of `volume` on this node; throws NOT_FOUND. */
  driver(volume: string): VolumeDriver;
}

const CLIENT_ID_BYTES_MAX = 255;
/** Replies of one stream not yet answered before it stops reading requests. */
const STREAM_REQUESTS_MAX = limits.clientRequestsQueuedMax;
/** Reply frames of this size or more come from replyFrames (smaller ones from Node's own pool). */
const REPLY_FRAME_POOLED_MIN = 32 * 1024;
/** Reply data bytes a frame holds at most, unless one reply has more. */
const REPLY_FRAME_DATA_MAX = 1024 * 1024;
/** Free reply frames kept for reuse (see BufferPool): a batch of 1 MiB reads in flight, twice over. */
const REPLY_FRAMES_FREE_BYTES_MAX = 16 * 1024 * 1024;

/**
 * The memory of the reply frames of every Io stream of the process. A frame
 * is given back once grpc-js is done with it: when its write calls back
 * (grpc-js has then copied it into the message it sends, and sent that).
 */
const replyFrames = new BufferPool(REPLY_FRAMES_FREE_BYTES_MAX);
const replyFrameAlloc = (bytes: number): Buffer => (bytes >= REPLY_FRAME_POOLED_MIN ? replyFrames.take(bytes) : Buffer.allocUnsafe(bytes));

function checkClientId(clientId: unknown): ClientId {
  if (typeof clientId !== "string" || clientId.length === 0 || Buffer.byteLength(clientId, "utf8") > CLIENT_ID_BYTES_MAX) {
    throw new VolumeError("INVALID_ARGUMENT", `Bad client id: 1 to ${CLIENT_ID_BYTES_MAX} bytes`);
  }
  // Ids of the nodes' own records (REPAIR_CLIENT_ID): a client using one would share their sequence numbers.
  if (clientId.startsWith(RESERVED_CLIENT_ID_PREFIX) && !clientId.startsWith(OPERATOR_CLIENT_ID_PREFIX)) {
    throw new VolumeError("INVALID_ARGUMENT", `Bad client id ${JSON.stringify(clientId)}: ids starting with "${RESERVED_CLIENT_ID_PREFIX}" are reserved`);
  }
  return asClientId(clientId);
}

function failureError(f: RequestFailure): Partial<{ code: number; details: string; metadata: Metadata }> {
  const e = toServiceError(new VolumeError(f.code, f.message));
  if (f.retryAt !== undefined) e.metadata?.set(RETRY_AT_METADATA_KEY, f.retryAt);
  return e;
}

/** The replica and client a unary call names; on a bad name or id, answers the call and returns null. */
function resolveCall<T>(router: VolumeRouter, req: { volume: string; clientId: string }, callback: sendUnaryData<T>): { driver: VolumeDriver; clientId: ClientId } | null {
  try {
    return { driver: router.driver(req.volume), clientId: checkClientId(req.clientId) };
  } catch (err) {
    callback(toServiceError(err));
    return null;
  }
}

export function volumeService(router: VolumeRouter, logger: Logger): UntypedServiceImplementation {
  const log = logger.child({ component: "volume-service" });
  return {
    Mount(call: ServerUnaryCall<MountRequestWire, MountReplyWire>, callback: sendUnaryData<MountReplyWire>): void {
      const req = call.request;
      const target = resolveCall(router, req, callback);
      if (target === null) return;
      const { driver, clientId } = target;
      if (req.readOnly) {
        // Served by this replica as it is: no epoch is taken, nobody is fenced.
        const refusal = driver.readOnlyRefusal();
        if (refusal !== null) {
          callback(failureError(refusal));
          return;
        }
        const s = driver.status();
        log.info({ volume: req.volume, clientId }, "mounted read-only");
        callback(null, { epoch: s.promisedEpoch, blockCount: driver.config.blockCount, blockSize: driver.config.blockSize, primary: router.nodeId });
        return;
      }
      driver.mount(clientId, req.takeover).then(
        (r) => {
          if (r.ok) {
            log.info({ volume: req.volume, clientId, epoch: r.epoch, takeover: req.takeover }, "mounted");
            callback(null, { epoch: r.epoch, blockCount: r.blockCount, blockSize: r.blockSize, primary: router.nodeId });
          } else {
            callback(failureError(r));
          }
        },
        (err: unknown) => callback(toServiceError(err)),
      );
    },

    Unmount(call: ServerUnaryCall<UnmountRequestWire, object>, callback: sendUnaryData<object>): void {
      const req = call.request;
      const target = resolveCall(router, req, callback);
      if (target === null) return;
      const { driver, clientId } = target;
      const mount = driver.activeMount();
      // Nothing to end: the client holds no mount here (it was taken over, or already ended).
      if (mount === null || mount.clientId !== clientId) {
        callback(null, {});
        return;
      }
      driver.unmount().then(
        (r) => callback(r.ok ? null : failureError(r), {}),
        (err: unknown) => callback(toServiceError(err)),
      );
    },

    Io(call: ServerDuplexStream<Buffer, Buffer>): void {
      new IoStream(router, call, log).start();
    },
  };
}

/** One client's Io stream: requests sequenced in arrival order, replies batched. */
class IoStream {
  private driver: VolumeDriver | null = null;
  private volume = "";
  private clientId: ClientId | null = null;
  private epoch = 0 as Epoch;
  /** A read-only mount's stream: reads of this replica's committed data, nothing else. */
  private readOnly = false;
  /** Set while a partial-block write is being read: later requests wait for it. */
  private gate: Promise<void> | null = null;
  /** Writes issued and not answered yet (a flush waits for the ones before it). */
  private readonly writes = new Set<Promise<void>>();
  private inFlight = 0;
  private paused = false;
  private readonly replies: IoReplyWire[] = [];
  private flushScheduled = false;
  private ended = false;
  private cancelled = false;

  constructor(
    private readonly router: VolumeRouter,
    private readonly call: ServerDuplexStream<Buffer, Buffer>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.call.on("data", (frame: Buffer) => {
      let batch: IoBatchWire;
      try {
        batch = decodeIoBatch(frame);
      } catch (err) {
        this.cancelled = true;
        this.call.emit("error", toServiceError(err));
        return;
      }
      this.onBatch(batch);
    });
    this.call.on("end", () => {
      this.ended = true;
      this.maybeFinish();
    });
    this.call.on("cancelled", () => {
      this.cancelled = true;
    });
    this.call.on("error", () => {
      this.cancelled = true;
    });
  }

  private onBatch(batch: IoBatchWire): void {
    if (this.cancelled) return;
    if (this.driver === null) {
      try {
        this.driver = this.router.driver(batch.volume);
        this.clientId = checkClientId(batch.clientId);
        this.readOnly = batch.readOnly === true;
        if (!this.readOnly && (!Number.isSafeInteger(batch.epoch) || batch.epoch < 1)) throw new VolumeError("INVALID_ARGUMENT", "The first batch of an Io stream names the mount's epoch");
        this.volume = batch.volume;
        this.epoch = batch.epoch as Epoch;
      } catch (err) {
        this.cancelled = true;
        this.call.emit("error", toServiceError(err));
        return;
      }
    }
    for (const req of batch.requests) this.enqueue(req);
  }

  private enqueue(req: IoRequestWire): void {
    this.inFlight++;
    if (this.inFlight >= STREAM_REQUESTS_MAX && !this.paused) {
      this.paused = true;
      this.call.pause();
    }
    if (this.gate === null) {
      const blocking = this.issue(req);
      if (blocking !== null) this.setGate(blocking);
      return;
    }
    this.setGate(this.gate.then(() => this.issue(req) ?? undefined));
  }

  private setGate(p: Promise<void>): void {
    const gate = p.catch(() => undefined);
    this.gate = gate;
    void gate.then(() => {
      if (this.gate === gate) this.gate = null;
    });
  }

  /** Hands the request to the core; returns a promise when later requests must wait for it (a read-modify-write). */
  private issue(req: IoRequestWire): Promise<void> | null {
    const driver = this.driver;
    const clientId = this.clientId;
    if (driver === null || clientId === null) return null;
    const fail = (err: unknown): null => {
      const e = err instanceof VolumeError ? err : new VolumeError("INVALID_ARGUMENT", (err as Error).message);
      this.reply({ id: req.id, ok: false, code: e.code, message: e.message, epoch: this.epoch });
      return null;
    };
    if (this.readOnly) return this.issueReadOnly(req, driver, fail);
    const mount = driver.activeMount();
    const ended = mount === null ? driver.endedMount(this.epoch) : null;
    if (ended !== null && ended.code === "NO_QUORUM") return fail(new VolumeError("NO_QUORUM", ended.message));
    if (mount === null && driver.removedFromSet() !== null) {
      // A replacement took this node's replica out of the set while it was
      // the primary: not a takeover, the client fails over to the new set.
      return fail(new VolumeError("NO_QUORUM", `${this.router.nodeId} no longer holds a replica of ${this.volume}: mount through ${driver.removedFromSet()?.join(", ")}`));
    }
    if (mount === null || mount.epoch !== this.epoch || mount.clientId !== clientId) {
      return fail(new VolumeError("FENCED", `The mount of ${this.volume} with epoch ${this.epoch} is no longer active on ${this.router.nodeId}: it was taken over or ended`));
    }
    const { blockSize, blockCount } = driver.config;
    try {
      switch (req.kind) {
        case "IO_KIND_READ": {
          if (req.data.length > 0) throw new VolumeError("INVALID_ARGUMENT", "A read carries no data");
          const span = checkByteRange(req.offset, req.length, blockSize, blockCount, "read");
          this.answerRead(req, span);
          return null;
        }
        case "IO_KIND_WRITE":
        case "IO_KIND_WRITE_ZEROES": {
          const write = req.kind === "IO_KIND_WRITE";
          const span = checkByteRange(req.offset, req.length, blockSize, blockCount, write ? "write" : "write zeroes of");
          if (write && req.data.length !== req.length) {
            throw new VolumeError("INVALID_ARGUMENT", `A write of ${req.length} bytes carries ${req.data.length} bytes of data`);
          }
          if (!write && req.data.length > 0) throw new VolumeError("INVALID_ARGUMENT", "A write-zeroes request carries no data");
          this.checkSeq(req);
          if (isAligned(span)) {
            this.answerWrite(req, write ? "write" : "zeroes", span.block, span.blockCount, write ? req.data : null);
            return null;
          }
          return this.readModifyWrite(req, span, write ? req.data : null);
        }
        case "IO_KIND_TRIM": {
          if (req.data.length > 0) throw new VolumeError("INVALID_ARGUMENT", "A trim carries no data");
          const span = checkByteRange(req.offset, req.length, blockSize, blockCount, "trim");
          this.checkSeq(req);
          // Trim is advice: only the whole blocks inside the range are dropped.
          const first = span.headBytes === 0 ? span.block : span.block + 1;
          const end = span.block + span.blockCount - (span.tailBytes === 0 ? 0 : 1);
          if (end <= first) {
            this.reply({ id: req.id, ok: true, epoch: this.epoch });
            return null;
          }
          this.answerWrite(req, "trim", first, end - first, null);
          return null;
        }
        case "IO_KIND_FLUSH": {
          // Every acknowledged write is durable on W replicas: a flush waits only for the writes before it.
          const before = [...this.writes];
          this.track(Promise.all(before).then(() => this.reply({ id: req.id, ok: true, epoch: this.epoch })));
          return null;
        }
        case "IO_KIND_UNSPECIFIED":
          throw new VolumeError("INVALID_ARGUMENT", "The request names no I/O kind");
        default:
          throw new VolumeError("INVALID_ARGUMENT", `Unknown I/O kind ${String(req.kind satisfies never)}`);
      }
    } catch (err) {
      return fail(err);
    }
  }

  private issueReadOnly(req: IoRequestWire, driver: VolumeDriver, fail: (err: unknown) => null): null {
    try {
      switch (req.kind) {
        case "IO_KIND_READ": {
          if (req.data.length > 0) throw new VolumeError("INVALID_ARGUMENT", "A read carries no data");
          const span = checkByteRange(req.offset, req.length, driver.config.blockSize, driver.config.blockCount, "read");
          driver.readApplied(asBlock(span.block), span.blockCount).then(
            (r) => {
              if (!r.ok) return this.reply({ id: req.id, ok: false, code: r.code, message: r.message, epoch: this.epoch });
              this.reply({ id: req.id, ok: true, data: r.data.subarray(span.headBytes, span.headBytes + req.length), epoch: this.epoch, staleMs: r.staleMs ?? 0 });
            },
            (err: unknown) => this.replyError(req, err),
          );
          return null;
        }
        case "IO_KIND_FLUSH":
          // Nothing was written through this mount.
          this.reply({ id: req.id, ok: true, epoch: this.epoch });
          return null;
        case "IO_KIND_WRITE":
        case "IO_KIND_WRITE_ZEROES":
        case "IO_KIND_TRIM":
        case "IO_KIND_UNSPECIFIED":
          throw new VolumeError("INVALID_ARGUMENT", `The mount of ${this.volume} is read-only: mount it read-write to change it`);
        default:
          throw new VolumeError("INVALID_ARGUMENT", `Unknown I/O kind ${String(req.kind satisfies never)}`);
      }
    } catch (err) {
      return fail(err);
    }
  }

  private checkSeq(req: IoRequestWire): void {
    if (!Number.isSafeInteger(req.clientSeq) || req.clientSeq < 1) {
      throw new VolumeError("INVALID_ARGUMENT", `A write-like request needs a client sequence number of at least 1, not ${req.clientSeq}`);
    }
  }

  /** A write's (never rejecting) outcome, until it settles. */
  private track(p: Promise<void>): void {
    this.writes.add(p);
    const settled = (): void => {
      this.writes.delete(p);
    };
    p.then(settled, settled);
  }

  private answerRead(req: IoRequestWire, span: BlockSpan): void {
    const driver = this.driver;
    if (driver === null) return;
    driver.read(asBlock(span.block), span.blockCount).then(
      (r) => {
        if (!r.ok) return this.reply({ id: req.id, ok: false, code: r.code, message: r.message, epoch: this.epoch });
        this.reply({ id: req.id, ok: true, data: r.data.subarray(span.headBytes, span.headBytes + req.length), epoch: this.epoch });
      },
      (err: unknown) => this.replyError(req, err),
    );
  }

  private answerWrite(req: IoRequestWire, kind: "write" | "zeroes" | "trim", block: number, blockCount: number, data: Uint8Array | null): void {
    const driver = this.driver;
    const clientId = this.clientId;
    if (driver === null || clientId === null) return;
    const done = driver.write({ type: "write", clientId, clientSeq: req.clientSeq, kind, block: asBlock(block), blockCount, data }).then(
      (r) => {
        if (r.ok) this.reply({ id: req.id, ok: true, epoch: r.epoch });
        else this.reply({ id: req.id, ok: false, code: r.code, message: r.message, epoch: this.epoch });
      },
      (err: unknown) => this.replyError(req, err),
    );
    this.track(done);
  }

  /** Reads the edge blocks through the core (so earlier writes show), merges, and writes whole blocks. */
  private readModifyWrite(req: IoRequestWire, span: BlockSpan, data: Uint8Array | null): Promise<void> {
    const driver = this.driver;
    if (driver === null) return Promise.resolve();
    const bs = driver.config.blockSize;
    const lastBlock = span.block + span.blockCount - 1;
    const headP = span.headBytes !== 0 ? driver.read(asBlock(span.block), 1) : null;
    const tailP = span.tailBytes !== 0 && !(headP !== null && lastBlock === span.block) ? driver.read(asBlock(lastBlock), 1) : null;
    let settle: () => void = () => undefined;
    const sequenced = new Promise<void>((resolve) => (settle = resolve));
    // The write's outcome, for flushes issued after it.
    const outcome = Promise.all([headP, tailP]).then(([head, tail]) => {
      const bad = [head, tail].find((r) => r !== null && !r.ok);
      if (bad !== undefined && bad !== null && !bad.ok) {
        settle();
        this.reply({ id: req.id, ok: false, code: bad.code, message: bad.message, epoch: this.epoch });
        return;
      }
      const headBytes = head !== null && head.ok ? head.data : null;
      const tailBytes = tail !== null && tail.ok ? tail.data : lastBlock === span.block ? headBytes : null;
      const merged = mergePartialWrite(span, bs, data, req.length, headBytes, tailBytes);
      // Still the same mount? A takeover while the edges were read fences this write.
      const mount = driver.activeMount();
      if (mount === null || mount.epoch !== this.epoch) {
        settle();
        this.reply({ id: req.id, ok: false, code: "FENCED", message: `The mount of ${this.volume} with epoch ${this.epoch} was taken over`, epoch: this.epoch });
        return;
      }
      this.answerWrite(req, "write", span.block, span.blockCount, merged);
      settle();
    });
    this.track(outcome.catch((err: unknown) => {
      settle();
      this.replyError(req, err);
    }));
    return sequenced;
  }

  private replyError(req: IoRequestWire, err: unknown): void {
    const e = err instanceof VolumeError ? err : new VolumeError("DISK_FAILED", `Internal error: ${(err as Error).message}`);
    this.reply({ id: req.id, ok: false, code: e.code, message: e.message, epoch: this.epoch });
  }

  private reply(r: IoReplyWire): void {
    this.inFlight--;
    if (this.paused && this.inFlight < STREAM_REQUESTS_MAX / 2) {
      this.paused = false;
      this.call.resume();
    }
    if (this.cancelled) return;
    this.replies.push(r);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.cancelled || this.replies.length === 0) return this.maybeFinish();
    const replies = this.replies.splice(0);
    try {
      // Frames of at most REPLY_FRAME_DATA_MAX of data (or one reply): the pool's frames then have one
      // size at 1 MiB reads, and the client has the first replies without waiting for the last.
      let first = 0;
      let bytes = 0;
      for (let i = 0; i < replies.length; i++) {
        const n = replies[i]?.data?.length ?? 0;
        if (i > first && bytes + n > REPLY_FRAME_DATA_MAX) {
          this.writeReplies(replies.slice(first, i));
          first = i;
          bytes = 0;
        }
        bytes += n;
      }
      this.writeReplies(first === 0 ? replies : replies.slice(first));
    } catch (err) {
      this.log.debug({ err }, "io stream write failed");
      this.cancelled = true;
    }
    this.maybeFinish();
  }

  private writeReplies(replies: readonly IoReplyWire[]): void {
    const frame = encodeIoReplyBatch(replies, replyFrameAlloc);
    // The reads' bytes are in the frame now: their buffers can serve other reads.
    for (const r of replies) if (r.data !== undefined) readBuffers.give(r.data);
    this.call.write(frame, () => replyFrames.give(frame));
  }

  private maybeFinish(): void {
    if (!this.ended || this.inFlight > 0 || this.replies.length > 0 || this.cancelled) return;
    this.cancelled = true;
    this.call.end();
  }
}

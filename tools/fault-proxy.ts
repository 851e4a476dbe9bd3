/**
 * A userspace TCP fault proxy: network faults between replivol nodes, and
 * between clients and nodes, without root (tc netem is not available here).
 *
 *   const p = await FaultProxy.start({ target: "127.0.0.1:7101", seed: 1 });
 *   try {
 *     // point the peer or client at p.address instead of 127.0.0.1:7101
 *     p.set({ direction: "both", fault: { kind: "delay", ms: 5, jitterMs: 2 } });
 *     p.set({ direction: "up", fault: { kind: "blackhole" } }); // one-way partition
 *     p.clear();
 *   } finally {
 *     await p.close();
 *   }
 *
 * The proxy listens on a loopback address only. Every accepted connection
 * gets its own connection to the target, and each direction of it ("up":
 * client to target, "down": target to client) goes through a fault stage
 * that reads the proxy's current faults for that direction, so a change
 * applies at once to existing and new connections.
 *
 * A fault stage works on the chunks the source socket delivers, not on
 * packets: their boundaries depend on timing and on TCP, so the proxy
 * models a link's effect on a byte stream. Each chunk is given a release
 * time (bandwidth, then delay) and waits in a FIFO queue until then; the
 * queue is capped per direction of each connection, and past the cap the
 * source socket is paused, which reaches the sender as TCP backpressure.
 *
 * The CLI is tools/fault-proxy-cli.ts.
 */
import { createServer, isIPv4, isIPv6, connect as netConnect, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

/** One direction of a proxied connection: "up" is client to target, "down" target to client. */
export type Direction = "up" | "down";
/** The directions a fault is set on. */
export type DirectionSelector = Direction | "both";

/**
 * A fault on one direction of every connection. Several can be combined in
 * one {@link FaultProxy.set} (for example `drop` + `bandwidth` + `delay`),
 * except `pass`, `blackhole` and `stall`, which stand alone.
 */
export type Fault =
  /** Bytes go through as they come (the default). */
  | { readonly kind: "pass" }
  /**
   * Bytes are read and silently discarded, and the connection stays open:
   * a partition that TCP does not notice (no RST, no FIN; a FIN that
   * arrives meanwhile is discarded too). Bytes sent during the blackhole
   * are lost for good, and so are bytes that were still queued (delayed)
   * when it was set: clearing it does not bring them back, so the byte
   * stream then has a gap. For HTTP/2 that means the connection breaks
   * once bytes flow again (framing or HPACK errors), and gRPC reconnects.
   * The sender never sees backpressure.
   */
  | { readonly kind: "blackhole" }
  /**
   * Bytes are held, not lost: nothing leaves the queue until the stall is
   * cleared, and then everything held is delivered in order. Past the
   * queue cap the source is paused, so the sender's socket fills up. This
   * is closer to a real partition of a TCP connection (which retransmits
   * after the network heals) than `blackhole`, and keeps the stream valid.
   */
  | { readonly kind: "stall" }
  /**
   * Every chunk is delivered `ms` later, plus a uniform random jitter in
   * [-jitterMs, +jitterMs] (never below 0), always in order: a chunk never
   * leaves before the one in front of it, so jitter cannot reorder bytes.
   * Timer resolution is about 1 ms.
   */
  | { readonly kind: "delay"; readonly ms: number; readonly jitterMs?: number }
  /**
   * Each chunk is dropped whole with the given probability (0..1), drawn
   * from a seeded generator (see {@link FaultProxyOptions.seed}). Dropping
   * chunks inside a TCP stream corrupts the byte stream: HTTP/2 sees a
   * protocol error and resets the connection. This models a lossy link
   * that breaks connections, not packet loss (TCP would retransmit lost
   * packets and hide them as latency; use `delay` with jitter for that).
   * A FIN is never dropped.
   */
  | { readonly kind: "drop"; readonly probability: number }
  /**
   * A token bucket of `bytesPerSec`, holding at most `burstBytes` (default
   * {@link BANDWIDTH_BURST_BYTES_DEFAULT}). A chunk larger than the tokens
   * available waits for them; it is sent whole, so the rate is smooth only
   * over spans much longer than one chunk (up to 64 KiB) takes to send.
   */
  | { readonly kind: "bandwidth"; readonly bytesPerSec: number; readonly burstBytes?: number };

export type FaultKind = Fault["kind"];

/** What a direction does, all faults of a {@link FaultProxy.set} folded together. */
export interface LinkFaults {
  readonly blackhole: boolean;
  readonly stall: boolean;
  readonly dropProbability: number;
  readonly delayMs: number;
  readonly jitterMs: number;
  /** 0 = unlimited. */
  readonly bytesPerSec: number;
  readonly burstBytes: number;
}

export interface DirectionStats {
  /** Bytes read from the source socket. */
  bytesIn: number;
  chunksIn: number;
  /** Bytes written to the destination socket. */
  bytesForwarded: number;
  /** Bytes discarded by blackhole or drop (including queued bytes a blackhole threw away, and bytes queued for a connection that closed). */
  bytesDropped: number;
  chunksDropped: number;
  /** Bytes waiting in queues (delay, bandwidth, stall) right now, across connections. */
  bytesQueued: number;
}

export interface FaultProxyStats {
  connectionsAccepted: number;
  /** Connections open now (accepted, not yet fully closed). */
  connectionsOpen: number;
  /** Connections refused (RST after accept): refuseNew, connectionsMax, or proxy closing. */
  connectionsRefused: number;
  /** Connections ended by resetConnections(). */
  connectionsReset: number;
  /** Connections whose connect to the target failed (the client got an RST). */
  connectionsTargetFailed: number;
  /** Delivery timers armed now (at most one per direction of each connection); 0 after close(). */
  timersArmed: number;
  up: DirectionStats;
  down: DirectionStats;
}

export interface FaultProxyOptions {
  /** host:port to forward to, for example "127.0.0.1:7101". */
  readonly target: string;
  /** Loopback address to listen on (127.0.0.0/8, ::1 or localhost); default 127.0.0.1. */
  readonly listenHost?: string;
  /** Port to listen on; default 0 (a free port). */
  readonly listenPort?: number;
  /**
   * Seed of the generator for drop and jitter; default 1. Each direction of
   * each connection has its own generator, seeded from this seed, the
   * connection's accept order (0, 1, ...) and the direction (see
   * {@link linkSeed}), so a run replays if the chunks do.
   */
  readonly seed?: number;
  /** Cap on bytes queued per direction of each connection before its source is paused; default {@link QUEUED_BYTES_MAX_DEFAULT}. */
  readonly queuedBytesMax?: number;
  /** Cap on connections open at once; more are refused with an RST. Default {@link CONNECTIONS_MAX_DEFAULT}. */
  readonly connectionsMax?: number;
}

/**
 * Default cap on queued bytes per direction of one connection. It also caps
 * throughput under delay at about queuedBytesMax / delay (8 MiB at 50 ms is
 * 160 MiB/s), as netem's packet limit does.
 */
export const QUEUED_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;
export const CONNECTIONS_MAX_DEFAULT = 256;
export const BANDWIDTH_BURST_BYTES_DEFAULT = 16 * 1024;
/** Bound on how long close() waits for sockets and the server to report closed. */
const CLOSE_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 10_000;

const PASS: LinkFaults = { blackhole: false, stall: false, dropProbability: 0, delayMs: 0, jitterMs: 0, bytesPerSec: 0, burstBytes: 0 };

/**
 * A small seeded generator (mulberry32): numbers in [0, 1), the same
 * sequence for the same seed on every run and platform.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of the generator of one direction of one connection (connections numbered from 0 in accept order). */
export function linkSeed(seed: number, connectionIndex: number, direction: Direction): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(connectionIndex * 2 + (direction === "up" ? 0 : 1) + 1, 0x85ebca6b)) >>> 0;
}

function fail(message: string): never {
  throw new Error(message);
}

function checkNumber(value: number, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isFinite(value) || value < min || value > max) fail(`Invalid ${what}: ${value} is not in [${min}, ${max}]`);
  return value;
}

/** Folds one or more faults into what a direction does; throws on a bad value or combination. */
export function foldFaults(faults: Fault | readonly Fault[]): LinkFaults {
  const list: readonly Fault[] = Array.isArray(faults) ? faults : [faults as Fault];
  if (list.length === 0) fail("Invalid fault: none given");
  const kinds = new Set<FaultKind>();
  const folded = { ...PASS };
  for (const f of list) {
    if (kinds.has(f.kind)) fail(`Invalid fault: ${f.kind} given twice`);
    kinds.add(f.kind);
    switch (f.kind) {
      case "pass":
        break;
      case "blackhole":
        folded.blackhole = true;
        break;
      case "stall":
        folded.stall = true;
        break;
      case "delay":
        folded.delayMs = checkNumber(f.ms, "delay ms", 0, 3_600_000);
        folded.jitterMs = checkNumber(f.jitterMs ?? 0, "jitter ms", 0, 3_600_000);
        break;
      case "drop":
        folded.dropProbability = checkNumber(f.probability, "drop probability", 0, 1);
        break;
      case "bandwidth":
        folded.bytesPerSec = checkNumber(f.bytesPerSec, "bandwidth bytes/s", 1);
        folded.burstBytes = checkNumber(f.burstBytes ?? BANDWIDTH_BURST_BYTES_DEFAULT, "burst bytes", 1);
        break;
      default:
        return f satisfies never;
    }
  }
  for (const alone of ["pass", "blackhole", "stall"] as const) {
    if (kinds.has(alone) && kinds.size > 1) fail(`Invalid fault: ${alone} cannot be combined with ${[...kinds].filter((k) => k !== alone).join(", ")}`);
  }
  return folded;
}

/** "host:port" to its parts; IPv6 as "[::1]:port". */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(s);
  if (m === null) fail(`Invalid address: ${s} is not host:port`);
  const host = m[1] ?? m[2] ?? "";
  const port = Number(m[3]);
  checkNumber(port, `port in ${s}`, 0, 65535);
  return { host, port };
}

/** Loopback addresses only: the proxy must never be reachable from another host. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (isIPv6(host)) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

const emptyDirectionStats = (): DirectionStats => ({ bytesIn: 0, chunksIn: 0, bytesForwarded: 0, bytesDropped: 0, chunksDropped: 0, bytesQueued: 0 });

interface Queued {
  /** null: the source's FIN, delivered as end() in order after the bytes before it. */
  readonly chunk: Buffer | null;
  readonly releaseAtMs: number;
}

/** The proxy's side of the fault stages; links read faults and report counts through it. */
interface LinkHost {
  faults(direction: Direction): LinkFaults;
  readonly stats: FaultProxyStats;
  readonly queuedBytesMax: number;
}

/**
 * One direction of one connection: reads `source`, applies the direction's
 * faults, writes `sink`. Owns at most one timer (for the head of its queue).
 */
class Link {
  private readonly queue: Queued[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private lastReleaseAtMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private paused = false;
  private sinkBlocked = false;
  private tokens = 0;
  private tokensAtMs = 0;
  private done = false;
  private readonly random: () => number;
  private readonly stats: DirectionStats;
  private readonly counters: FaultProxyStats;

  constructor(
    private readonly host: LinkHost,
    readonly direction: Direction,
    private readonly source: Socket,
    private readonly sink: Socket,
    seed: number,
  ) {
    this.random = seededRandom(seed);
    this.stats = host.stats[direction];
    this.counters = host.stats;
    this.resetBucket();
    source.on("data", (chunk: Buffer) => this.onData(chunk));
    source.on("end", () => this.onEnd());
    sink.on("drain", () => {
      this.sinkBlocked = false;
      this.updatePause();
    });
  }

  /** Called by the proxy after its faults changed. */
  onFaultsChanged(): void {
    if (this.done) return;
    this.resetBucket();
    if (this.host.faults(this.direction).blackhole) this.discardQueue();
    // A stall may have ended, or a delay shortened: deliver what is due now.
    this.deliverDue();
  }

  /** Stops for good: the timer is cleared and queued bytes are discarded. */
  stop(): void {
    if (this.done) return;
    this.discardQueue();
    this.done = true;
    this.clearTimer();
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    this.stats.bytesIn += chunk.length;
    this.stats.chunksIn += 1;
    const f = this.host.faults(this.direction);
    if (f.blackhole || (f.dropProbability > 0 && this.random() < f.dropProbability)) {
      this.stats.bytesDropped += chunk.length;
      this.stats.chunksDropped += 1;
      return;
    }
    const releaseAtMs = this.releaseTime(f, chunk.length);
    if (this.queueHead === this.queue.length && !f.stall && releaseAtMs <= performance.now()) {
      this.write(chunk);
      return;
    }
    this.enqueue(chunk, releaseAtMs);
    this.deliverDue();
  }

  private onEnd(): void {
    if (this.done) return;
    // A blackhole swallows the FIN as it swallows bytes.
    if (this.host.faults(this.direction).blackhole) return;
    this.enqueue(null, Math.max(this.lastReleaseAtMs, performance.now()));
    this.deliverDue();
  }

  /** Bandwidth first (when the bytes may leave), then delay on top; never before the chunk in front. */
  private releaseTime(f: LinkFaults, bytes: number): number {
    const now = performance.now();
    let at = now;
    if (f.bytesPerSec > 0) {
      this.tokens = Math.min(f.burstBytes, this.tokens + ((now - this.tokensAtMs) * f.bytesPerSec) / 1000);
      this.tokensAtMs = now;
      this.tokens -= bytes;
      if (this.tokens < 0) at = now + (-this.tokens * 1000) / f.bytesPerSec;
    }
    if (f.delayMs > 0 || f.jitterMs > 0) {
      const jitter = f.jitterMs > 0 ? (this.random() * 2 - 1) * f.jitterMs : 0;
      at += Math.max(0, f.delayMs + jitter);
    }
    return Math.max(at, this.lastReleaseAtMs);
  }

  private resetBucket(): void {
    const f = this.host.faults(this.direction);
    this.tokens = f.burstBytes;
    this.tokensAtMs = performance.now();
  }

  private enqueue(chunk: Buffer | null, releaseAtMs: number): void {
    this.queue.push({ chunk, releaseAtMs });
    this.lastReleaseAtMs = releaseAtMs;
    const n = chunk?.length ?? 0;
    this.queuedBytes += n;
    this.stats.bytesQueued += n;
    this.updatePause();
  }

  private dequeue(): Queued | undefined {
    const item = this.queue[this.queueHead];
    if (item === undefined) return undefined;
    this.queueHead += 1;
    // Compact now and then so the array does not grow without bound.
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead >= 1024 && this.queueHead * 2 >= this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    const n = item.chunk?.length ?? 0;
    this.queuedBytes -= n;
    this.stats.bytesQueued -= n;
    return item;
  }

  private discardQueue(): void {
    for (let item = this.dequeue(); item !== undefined; item = this.dequeue()) {
      if (item.chunk !== null) {
        this.stats.bytesDropped += item.chunk.length;
        this.stats.chunksDropped += 1;
      }
    }
    this.lastReleaseAtMs = 0;
    this.clearTimer();
    this.updatePause();
  }

  /** Delivers every queued item that is due, then arms the timer for the next one. */
  private deliverDue(): void {
    this.clearTimer();
    if (this.done || this.host.faults(this.direction).stall) return;
    const now = performance.now();
    for (let head = this.queue[this.queueHead]; head !== undefined && head.releaseAtMs <= now; head = this.queue[this.queueHead]) {
      this.dequeue();
      if (head.chunk === null) {
        this.sink.end();
      } else {
        this.write(head.chunk);
      }
    }
    const next = this.queue[this.queueHead];
    if (next !== undefined) {
      this.counters.timersArmed += 1;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.counters.timersArmed -= 1;
        this.deliverDue();
      }, Math.max(1, Math.ceil(next.releaseAtMs - now)));
    }
    this.updatePause();
  }

  private write(chunk: Buffer): void {
    if (this.sink.destroyed || this.sink.writableEnded) {
      this.stats.bytesDropped += chunk.length;
      this.stats.chunksDropped += 1;
      return;
    }
    this.stats.bytesForwarded += chunk.length;
    if (!this.sink.write(chunk)) {
      this.sinkBlocked = true;
      this.updatePause();
    }
  }

  private updatePause(): void {
    if (this.done) return;
    const shouldPause = this.queuedBytes >= this.host.queuedBytesMax || this.sinkBlocked;
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.source.pause();
    } else if (!shouldPause && this.paused) {
      this.paused = false;
      this.source.resume();
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.counters.timersArmed -= 1;
    }
  }
}

/** One accepted connection: the client socket, the target socket, and a link each way. */
class Connection {
  readonly links: Link[] = [];
  private readonly closed: Promise<void>;
  private ended = false;

  constructor(
    readonly index: number,
    readonly client: Socket,
    readonly target: Socket,
  ) {
    const closedOne = (s: Socket): Promise<void> => new Promise<void>((resolve) => s.once("close", () => resolve()));
    this.closed = Promise.all([closedOne(client), closedOne(target)]).then(() => undefined);
  }

  /** Ends both sockets at once: RST with `reset`, otherwise a plain destroy. */
  destroy(reset: boolean): void {
    this.stopLinks();
    for (const s of [this.client, this.target]) {
      if (s.destroyed) continue;
      // resetAndDestroy needs a connected handle; a socket still connecting is just destroyed.
      if (reset && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
  }

  stopLinks(): void {
    if (this.ended) return;
    this.ended = true;
    for (const l of this.links) l.stop();
  }

  whenClosed(): Promise<void> {
    return this.closed;
  }
}

/**
 * A TCP proxy from a loopback listening address to one target, with faults
 * per direction changeable at run time. See the file comment and
 * {@link Fault}.
 */
export class FaultProxy {
  private readonly connections = new Set<Connection>();
  private readonly faultsByDirection: Record<Direction, LinkFaults> = { up: PASS, down: PASS };
  private readonly counters: FaultProxyStats = {
    connectionsAccepted: 0,
    connectionsOpen: 0,
    connectionsRefused: 0,
    connectionsReset: 0,
    connectionsTargetFailed: 0,
    timersArmed: 0,
    up: emptyDirectionStats(),
    down: emptyDirectionStats(),
  };
  private refuseNew = false;
  private closing: Promise<void> | null = null;
  private nextIndex = 0;
  private readonly seed: number;
  private readonly queuedBytesMax: number;
  private readonly connectionsMax: number;
  private readonly targetHost: string;
  private readonly targetPort: number;

  private constructor(
    private readonly server: Server,
    opts: FaultProxyOptions,
  ) {
    const t = parseHostPort(opts.target);
    this.targetHost = t.host;
    this.targetPort = t.port;
    this.seed = opts.seed ?? 1;
    this.queuedBytesMax = checkNumber(opts.queuedBytesMax ?? QUEUED_BYTES_MAX_DEFAULT, "queuedBytesMax", 1);
    this.connectionsMax = checkNumber(opts.connectionsMax ?? CONNECTIONS_MAX_DEFAULT, "connectionsMax", 1);
    server.on("connection", (client: Socket) => this.accept(client));
  }

  /** Starts listening; resolves once the port is bound. */
  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const listenHost = opts.listenHost ?? "127.0.0.1";
    if (!isLoopbackHost(listenHost)) fail(`Cannot listen on ${listenHost}: only loopback addresses are allowed`);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const proxy = new FaultProxy(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.listenPort ?? 0, listenHost, () => {
        server.off("error", reject);
        resolve();
      });
    });
    // After listening, an error on the server (rare: EMFILE on accept) must not crash the process.
    server.on("error", () => undefined);
    return proxy;
  }

  /** The port listened on. */
  get port(): number {
    const a = this.server.address();
    if (a === null || typeof a === "string") fail("Fault proxy is not listening");
    return a.port;
  }

  /** "host:port" to give clients instead of the target. */
  get address(): string {
    const a = this.server.address();
    if (a === null || typeof a === "string") fail("Fault proxy is not listening");
    return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  get target(): string {
    return `${this.targetHost}:${this.targetPort}`;
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** Whether the listening socket is still open (false once close() resolved). */
  get listening(): boolean {
    return this.server.listening;
  }

  /**
   * Replaces the faults of one or both directions, for existing and new
   * connections. Several faults combine (see {@link Fault}).
   */
  set(change: { readonly direction: DirectionSelector; readonly fault: Fault | readonly Fault[] }): void {
    const folded = foldFaults(change.fault);
    if (change.direction === "up" || change.direction === "both") this.faultsByDirection.up = folded;
    if (change.direction === "down" || change.direction === "both") this.faultsByDirection.down = folded;
    this.faultsChanged();
  }

  /** Every direction back to pass, and new connections accepted again. Bytes a blackhole discarded stay lost; stalled bytes are delivered. */
  clear(): void {
    this.faultsByDirection.up = PASS;
    this.faultsByDirection.down = PASS;
    this.refuseNew = false;
    this.faultsChanged();
  }

  /** The faults of one direction now. */
  faults(direction: Direction): LinkFaults {
    return this.faultsByDirection[direction];
  }

  /**
   * Ends every current connection with an RST on both sides now. With
   * `refuseNew`, connections accepted from now on are reset at once, until
   * clear() or `acceptNew()`.
   */
  resetConnections(opts: { readonly refuseNew?: boolean } = {}): void {
    if (opts.refuseNew === true) this.refuseNew = true;
    for (const c of this.connections) {
      this.counters.connectionsReset += 1;
      c.destroy(true);
    }
  }

  /** Accepts new connections again after resetConnections({ refuseNew: true }), leaving faults as they are. */
  acceptNew(): void {
    this.refuseNew = false;
  }

  /** A copy of the counters. */
  stats(): FaultProxyStats {
    return { ...this.counters, up: { ...this.counters.up }, down: { ...this.counters.down } };
  }

  /**
   * Closes the listening socket, destroys every connection's sockets, clears
   * every timer, and resolves when the server and all sockets have reported
   * closed (bounded by a timeout). Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const all = [...this.connections];
    for (const c of all) c.destroy(false);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), CLOSE_TIMEOUT_MS);
    });
    try {
      const r = await Promise.race([Promise.all([serverClosed, ...all.map((c) => c.whenClosed())]), timeout]);
      if (r === "timeout") throw new Error(`Fault proxy to ${this.target} did not close within ${CLOSE_TIMEOUT_MS} ms`);
    } finally {
      clearTimeout(timer);
    }
  }

  private faultsChanged(): void {
    for (const c of this.connections) for (const l of c.links) l.onFaultsChanged();
  }

  private accept(client: Socket): void {
    client.on("error", () => undefined);
    if (this.closing !== null || this.refuseNew || this.connections.size >= this.connectionsMax) {
      this.counters.connectionsRefused += 1;
      client.resetAndDestroy();
      return;
    }
    this.counters.connectionsAccepted += 1;
    this.counters.connectionsOpen += 1;
    const index = this.nextIndex++;
    client.setNoDelay(true);
    const target = netConnect({ host: this.targetHost, port: this.targetPort, allowHalfOpen: true, noDelay: true });
    target.on("error", () => undefined);
    target.setTimeout(CONNECT_TIMEOUT_MS, () => target.destroy(new Error("Connect timeout")));
    const conn = new Connection(index, client, target);
    this.connections.add(conn);
    const host: LinkHost = { faults: (d) => this.faultsByDirection[d], stats: this.counters, queuedBytesMax: this.queuedBytesMax };
    let connected = false;
    target.once("connect", () => {
      connected = true;
      target.setTimeout(0);
      conn.links.push(new Link(host, "up", client, target, linkSeed(this.seed, index, "up")));
      conn.links.push(new Link(host, "down", target, client, linkSeed(this.seed, index, "down")));
      client.resume();
    });
    // A socket that closes with an error (an RST from its peer, a failed
    // connect) takes the other one down with an RST: the reset goes
    // through. A clean close (FIN both ways) needs nothing more: the other
    // socket is ended in order by its link once its queue has drained.
    const onClose = (which: Socket, other: Socket) => (hadError: boolean) => {
      const connectFailed = which === target && !connected && !client.destroyed;
      if (connectFailed) this.counters.connectionsTargetFailed += 1;
      if (other.destroyed || !(hadError || connectFailed)) return;
      conn.stopLinks();
      if (other.connecting) other.destroy();
      else other.resetAndDestroy();
    };
    client.on("close", onClose(client, target));
    target.on("close", onClose(target, client));
    void conn.whenClosed().then(() => {
      conn.stopLinks();
      this.connections.delete(conn);
      this.counters.connectionsOpen -= 1;
    });
  }
}

/** A finite number from a command-line word, or an error naming it. */
export function toNumber(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || s.trim() === "" || !Number.isFinite(n)) throw new Error(`Invalid ${what}: ${s ?? "missing"}`);
  return n;
}

export function isDirectionSelector(s: string | undefined): s is DirectionSelector {
  return s === "up" || s === "down" || s === "both";
}

/** One fault from its words in the control language, e.g. ["delay", "10", "2"]. */
export function parseFault(words: readonly string[]): Fault {
  const [kind, a, b] = words;
  const noMore = (n: number): void => {
    if (words.length > n) throw new Error(`Too many arguments for ${kind}: ${words.slice(n).join(" ")}`);
  };
  switch (kind) {
    case "pass":
    case "blackhole":
    case "stall":
      noMore(1);
      return { kind };
    case "delay":
      noMore(3);
      return b === undefined ? { kind, ms: toNumber(a, "delay ms") } : { kind, ms: toNumber(a, "delay ms"), jitterMs: toNumber(b, "jitter ms") };
    case "drop":
      noMore(2);
      return { kind, probability: toNumber(a, "drop probability") };
    case "bandwidth":
      noMore(3);
      return b === undefined ? { kind, bytesPerSec: toNumber(a, "bytes/s") } : { kind, bytesPerSec: toNumber(a, "bytes/s"), burstBytes: toNumber(b, "burst bytes") };
    case undefined:
      throw new Error("Missing fault");
    default:
      throw new Error(`Unknown fault: ${kind}`);
  }
}

/**
 * Runs one line of the CLI's control language (see tools/fault-proxy-cli.ts)
 * against the proxy; returns the answer line and whether to quit.
 */
export function runControlLine(proxy: FaultProxy, line: string): { answer: string; quit: boolean } {
  const words = line.trim().split(/\s+/).filter((w) => w !== "");
  const [verb] = words;
  try {
    switch (verb) {
      case undefined:
        return { answer: "", quit: false };
      case "clear":
        proxy.clear();
        return { answer: "ok clear", quit: false };
      case "reset": {
        const refuseNew = words[1] === "refuse";
        if (words.length > (refuseNew ? 2 : 1)) throw new Error(`Invalid reset: ${line.trim()}`);
        proxy.resetConnections({ refuseNew });
        return { answer: `ok reset${refuseNew ? " refuse" : ""}`, quit: false };
      }
      case "stats":
        return { answer: JSON.stringify(proxy.stats()), quit: false };
      case "quit":
        return { answer: "ok quit", quit: true };
      case "set": {
        const direction = isDirectionSelector(words[1]) ? words[1] : "both";
        const spec = words.slice(isDirectionSelector(words[1]) ? 2 : 1).join(" ");
        const faults = spec.split(";").map((part) => parseFault(part.trim().split(/\s+/).filter((w) => w !== "")));
        proxy.set({ direction, fault: faults });
        return { answer: `ok set ${direction} ${spec}`, quit: false };
      }
      default: {
        const direction = isDirectionSelector(words[1]) ? words[1] : "both";
        const faultWords = [verb, ...words.slice(isDirectionSelector(words[1]) ? 2 : 1)];
        proxy.set({ direction, fault: parseFault(faultWords) });
        return { answer: `ok ${direction} ${faultWords.join(" ")}`, quit: false };
      }
    }
  } catch (err) {
    return { answer: `error: ${err instanceof Error ? err.message : String(err)}`, quit: false };
  }
}

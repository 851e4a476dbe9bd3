/**
 * tools/fault-proxy.ts against real sockets on 127.0.0.1. Every server,
 * socket, proxy and gRPC channel a test opens is registered with `track` and
 * closed in afterEach, whatever happened; every wait has a timeout.
 */
import { credentials, loadPackageDefinition, Server, ServerCredentials, status, type Client, type ServiceClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server as NetServer, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { FaultProxy, foldFaults, linkSeed, parseFault, runControlLine, seededRandom, type FaultProxyOptions } from "../../tools/fault-proxy.js";

const WAIT_MS = 5_000;

const cleanups: (() => Promise<void> | void)[] = [];
function track(cleanup: () => Promise<void> | void): void {
  cleanups.push(cleanup);
}

afterEach(async () => {
  const errors: unknown[] = [];
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

async function startProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const p = await FaultProxy.start(opts);
  track(() => p.close());
  return p;
}

/** A TCP server on 127.0.0.1:0; `onSocket` gets every accepted socket; all are destroyed on cleanup. */
async function startServer(onSocket: (s: Socket) => void): Promise<{ server: NetServer; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on("error", () => undefined);
    onSocket(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  track(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const a = server.address();
  if (a === null || typeof a === "string") throw new Error("No port");
  return { server, port: a.port, sockets };
}

const startEchoServer = () => startServer((s) => s.pipe(s));

async function connectTo(port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<Socket> {
  const s = connect({ host: "127.0.0.1", port, allowHalfOpen: opts.allowHalfOpen ?? false, noDelay: true });
  s.on("error", () => undefined);
  track(() => {
    s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("close", () => reject(new Error(`Connect to 127.0.0.1:${port} failed`)));
  });
  return s;
}

/** Everything `s` receives, as it arrives. */
function collect(s: Socket): { bytes: () => Buffer; ended: Promise<void> } {
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((resolve) => {
    s.on("end", () => resolve());
    s.on("close", () => resolve());
  });
  s.on("data", (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks), ended };
}

/** Waits for `s` to close; resolves with the error code it saw, if any. */
function whenClosed(s: Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    let code: string | undefined;
    s.on("error", (e: NodeJS.ErrnoException) => (code = e.code));
    if (s.closed) resolve(code);
    else s.once("close", () => resolve(code));
  });
}

function withTimeout<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** Round trip of one byte through an echo, in ms. */
async function roundTripMs(s: Socket): Promise<number> {
  const t0 = performance.now();
  const echoed = new Promise<void>((resolve) => s.once("data", () => resolve()));
  s.write("x");
  await withTimeout(echoed, "echo");
  return performance.now() - t0;
}

/**
 * Sends `up` from a client through the proxy and `down` from the target
 * back, both ended with FIN; returns what each side received.
 */
async function exchange(proxyPort: number, target: { sockets: Socket[] }, up: Buffer, down: Buffer): Promise<{ atTarget: Buffer; atClient: Buffer }> {
  const client = await connectTo(proxyPort, { allowHalfOpen: true });
  const fromTarget = collect(client);
  await waitFor(() => target.sockets.length > 0, "the target to accept");
  const t = target.sockets[0];
  if (t === undefined) throw new Error("No target socket");
  const fromClient = collect(t);
  client.end(up);
  t.end(down);
  await withTimeout(Promise.all([fromTarget.ended, fromClient.ended]), "both directions to end", 10_000);
  return { atTarget: fromClient.bytes(), atClient: fromTarget.bytes() };
}

describe("FaultProxy", () => {
  it("passes a few MiB of random bytes each way byte-exact", async () => {
    const target = await startServer(() => undefined);
    const p = await startProxy({ target: `127.0.0.1:${target.port}` });
    expect(p.address).toBe(`127.0.0.1:${p.port}`);
    const up = randomBytes(3 * 1024 * 1024);
    const down = randomBytes(3 * 1024 * 1024 + 17);
    const r = await exchange(p.port, target, up, down);
    expect(r.atTarget.equals(up)).toBe(true);
    expect(r.atClient.equals(down)).toBe(true);
    const st = p.stats();
    expect(st.up.bytesForwarded).toBe(up.length);
    expect(st.down.bytesForwarded).toBe(down.length);
    expect(st.up.bytesDropped + st.down.bytesDropped).toBe(0);
    expect(st.connectionsAccepted).toBe(1);
  });

  it("keeps bytes in order under delay with jitter and a bandwidth limit", async () => {
    const target = await startServer(() => undefined);
    const p = await startProxy({ target: `127.0.0.1:${target.port}`, seed: 7 });
    p.set({ direction: "both", fault: [{ kind: "delay", ms: 3, jitterMs: 3 }, { kind: "bandwidth", bytesPerSec: 20 * 1024 * 1024 }] });
    const up = randomBytes(1024 * 1024);
    const down = randomBytes(1024 * 1024 + 3);
    const r = await exchange(p.port, target, up, down);
    expect(r.atTarget.equals(up)).toBe(true);
    expect(r.atClient.equals(down)).toBe(true);
  });

  it("adds about the delay that is set, per direction", async () => {
    const echo = await startEchoServer();
    const p = await startProxy({ target: `127.0.0.1:${echo.port}` });
    const c = await connectTo(p.port);
    const minRoundTripMs = async (samples: number): Promise<number> => {
      let min = Infinity;
      for (let i = 0; i < samples; i++) min = Math.min(min, await roundTripMs(c));
      return min;
    };
    await minRoundTripMs(2);
    p.set({ direction: "up", fault: { kind: "delay", ms: 50 } });
    const upMs = await minRoundTripMs(3);
    p.set({ direction: "both", fault: { kind: "delay", ms: 50 } });
    const bothMs = await minRoundTripMs(2);
    p.clear();
    const clearedMs = await minRoundTripMs(3);
    // A loopback round trip without faults is well under 1 ms, so the round trip is the added latency.
    expect(upMs).toBeGreaterThanOrEqual(45);
    expect(bothMs).toBeGreaterThanOrEqual(90);
    // No tight upper bound on this noisy machine: only that clear() took the delay away.
    expect(clearedMs).toBeLessThan(40);
  });

  it("limits bandwidth", async () => {
    const target = await startServer(() => undefined);
    const p = await startProxy({ target: `127.0.0.1:${target.port}` });
    p.set({ direction: "up", fault: { kind: "bandwidth", bytesPerSec: 1024 * 1024, burstBytes: 16 * 1024 } });
    const up = randomBytes(256 * 1024);
    const t0 = performance.now();
    const r = await exchange(p.port, target, up, Buffer.alloc(0));
    // (256 KiB - 16 KiB burst) at 1 MiB/s is 234 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(200);
    expect(r.atTarget.equals(up)).toBe(true);
  });

  it("blackholes one direction while the other flows; bytes sent meanwhile are lost, new ones flow after clear()", async () => {
    const target = await startServer(() => undefined);
    const p = await startProxy({ target: `127.0.0.1:${target.port}` });
    const c = await connectTo(p.port);
    const atClient = collect(c);
    await waitFor(() => target.sockets.length === 1, "the target to accept");
    const t = target.sockets[0] as Socket;
    const atTarget = collect(t);

    p.set({ direction: "up", fault: { kind: "blackhole" } });
    c.write("lost-up");
    t.write("down-flows");
    await waitFor(() => atClient.bytes().toString() === "down-flows", "the down direction to deliver");
    await waitFor(() => p.stats().up.bytesDropped === 7, "the proxy to drop the up bytes");
    await sleep(100);
    expect(atTarget.bytes().length).toBe(0);
    expect(c.destroyed).toBe(false);

    p.clear();
    c.write("after");
    await waitFor(() => atTarget.bytes().length >= 5, "new up bytes after clear()");
    expect(atTarget.bytes().toString()).toBe("after");
  });

  it("stalls a direction, holding bytes and pausing the sender at the queue cap, then delivers everything", async () => {
    const queuedBytesMax = 256 * 1024;
    const target = await startServer(() => undefined);
    const p = await startProxy({ target: `127.0.0.1:${target.port}`, queuedBytesMax });
    p.set({ direction: "up", fault: { kind: "stall" } });
    // Far more than the cap plus the kernel's socket buffers on the way.
    const up = randomBytes(16 * 1024 * 1024);
    const c = await connectTo(p.port, { allowHalfOpen: true });
    await waitFor(() => target.sockets.length === 1, "the target to accept");
    const t = target.sockets[0] as Socket;
    const atTarget = collect(t);
    c.end(up);
    await waitFor(() => p.stats().up.bytesQueued >= queuedBytesMax, "the queue to fill");
    let before = p.stats().up.bytesIn;
    for (;;) {
      await sleep(100);
      const now = p.stats().up.bytesIn;
      if (now === before) break;
      before = now;
    }
    const st = p.stats();
    expect(st.up.bytesQueued).toBeLessThanOrEqual(queuedBytesMax + 64 * 1024);
    expect(st.up.bytesIn).toBeLessThan(up.length);
    // The sender sees the backpressure: its socket cannot hand everything to the kernel.
    expect(c.writableLength).toBeGreaterThan(0);
    expect(atTarget.bytes().length).toBe(0);
    p.clear();
    await withTimeout(atTarget.ended, "the stalled bytes and FIN after clear()", 10_000);
    expect(atTarget.bytes().equals(up)).toBe(true);
    expect(p.stats().up.bytesQueued).toBe(0);
  });

  it("resets current connections, refuses new ones until clear()", async () => {
    const echo = await startEchoServer();
    const p = await startProxy({ target: `127.0.0.1:${echo.port}` });
    const c = await connectTo(p.port);
    await roundTripMs(c);
    const closed = whenClosed(c);
    p.resetConnections({ refuseNew: true });
    expect(await withTimeout(closed, "the client to see the reset")).toBe("ECONNRESET");
    await waitFor(() => echo.sockets.every((s) => s.destroyed), "the target side to be reset too");

    // The kernel accepts, the proxy answers with an RST: the connection fails before any byte comes back.
    const refused = connect({ host: "127.0.0.1", port: p.port });
    track(() => {
      refused.destroy();
    });
    const refusedClosed = whenClosed(refused);
    const got = collect(refused);
    refused.write("x");
    expect(await withTimeout(refusedClosed, "the refused connection to close")).toBe("ECONNRESET");
    expect(got.bytes().length).toBe(0);
    expect(p.stats().connectionsRefused).toBe(1);
    expect(echo.sockets).toHaveLength(1);

    p.clear();
    const again = await connectTo(p.port);
    await roundTripMs(again);
    expect(p.stats()).toMatchObject({ connectionsAccepted: 2, connectionsReset: 1, connectionsOpen: 1 });
  });

  it("drops the same chunks for the same seed", async () => {
    const chunkCount = 100;
    const probability = 0.3;
    const seed = 42;
    // The chunks that go through, as the target sees them (each chunk is 50 bytes of its index).
    const run = async (): Promise<number[]> => {
      const target = await startServer(() => undefined);
      const p = await startProxy({ target: `127.0.0.1:${target.port}`, seed });
      p.set({ direction: "up", fault: { kind: "drop", probability } });
      const c = await connectTo(p.port, { allowHalfOpen: true });
      await waitFor(() => target.sockets.length === 1, "the target to accept");
      const atTarget = collect(target.sockets[0] as Socket);
      for (let i = 0; i < chunkCount; i++) {
        c.write(Buffer.alloc(50, i));
        // One write, one chunk: wait until the proxy has seen it before the next.
        await waitFor(() => p.stats().up.chunksIn === i + 1, `chunk ${i} at the proxy`);
      }
      await waitFor(() => atTarget.bytes().length === p.stats().up.bytesForwarded, "the forwarded bytes at the target");
      const st = p.stats();
      expect(st.up.chunksDropped + st.up.bytesForwarded / 50).toBe(chunkCount);
      const got = atTarget.bytes();
      return Array.from({ length: got.length / 50 }, (_, k) => got[k * 50] as number);
    };
    const first = await run();
    const second = await run();
    expect(second).toEqual(first);
    const random = seededRandom(linkSeed(seed, 0, "up"));
    const expected = Array.from({ length: chunkCount }, (_, i) => i).filter(() => random() >= probability);
    expect(first).toEqual(expected);
    expect(chunkCount - first.length).toBeGreaterThan(10);
    expect(chunkCount - first.length).toBeLessThan(60);
  });

  it("close() ends every socket and the server and leaves no timers", async () => {
    const echo = await startEchoServer();
    // Timers are not counted here: vitest's own come and go. The proxy counts its own (timersArmed).
    const handles = (): Record<string, number> => {
      const counts: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) if (r.startsWith("TCP")) counts[r] = (counts[r] ?? 0) + 1;
      return counts;
    };
    await sleep(10);
    const before = handles();
    const p = await FaultProxy.start({ target: `127.0.0.1:${echo.port}` });
    track(() => p.close());
    const c = connect({ host: "127.0.0.1", port: p.port });
    c.on("error", () => undefined);
    track(() => {
      c.destroy();
    });
    const clientClosed = whenClosed(c);
    await roundTripMs(c);
    // Bytes held in a delay queue: a timer is pending when close() comes.
    p.set({ direction: "up", fault: { kind: "delay", ms: 10_000 } });
    c.write("queued");
    await waitFor(() => p.stats().up.bytesQueued === 6, "bytes in the delay queue");
    expect(p.stats().timersArmed).toBe(1);
    expect(handles()["TCPSocketWrap"] ?? 0).toBe((before["TCPSocketWrap"] ?? 0) + 4);

    await withTimeout(p.close(), "close()");
    expect(p.listening).toBe(false);
    expect(p.stats()).toMatchObject({ connectionsOpen: 0, timersArmed: 0 });
    await withTimeout(clientClosed, "the client to see its socket closed");
    await waitFor(() => echo.sockets.every((s) => s.destroyed), "the target side to close");
    await waitFor(() => JSON.stringify(handles()) === JSON.stringify(before), `handles back to ${JSON.stringify(before)}`).catch(() => {
      expect(handles()).toEqual(before);
    });
    await expect(p.close()).resolves.toBeUndefined();
  });

  it("refuses to listen on anything but loopback", async () => {
    await expect(FaultProxy.start({ target: "127.0.0.1:1", listenHost: "0.0.0.0" })).rejects.toThrow(/only loopback/);
  });
});

describe("fault specs and the control language", () => {
  it.each([
    [[{ kind: "blackhole" }, { kind: "delay", ms: 1 }], /blackhole cannot be combined/],
    [[{ kind: "delay", ms: 1 }, { kind: "delay", ms: 2 }], /given twice/],
    [{ kind: "drop", probability: 1.5 }, /drop probability/],
    [{ kind: "delay", ms: -1 }, /delay ms/],
    [{ kind: "bandwidth", bytesPerSec: 0 }, /bandwidth/],
  ] as const)("rejects %j", (fault, message) => {
    expect(() => foldFaults(fault)).toThrow(message);
  });

  it("parses faults", () => {
    expect(parseFault(["delay", "10", "2"])).toEqual({ kind: "delay", ms: 10, jitterMs: 2 });
    expect(parseFault(["drop", "0.5"])).toEqual({ kind: "drop", probability: 0.5 });
    expect(() => parseFault(["delay"])).toThrow(/delay ms/);
    expect(() => parseFault(["jump"])).toThrow(/Unknown fault/);
  });

  it("runs control lines against a proxy", async () => {
    const p = await startProxy({ target: "127.0.0.1:1" });
    expect(runControlLine(p, "delay up 10 2").answer).toBe("ok up delay 10 2");
    expect(p.faults("up")).toMatchObject({ delayMs: 10, jitterMs: 2 });
    expect(p.faults("down").delayMs).toBe(0);
    expect(runControlLine(p, "blackhole").answer).toBe("ok both blackhole");
    expect(p.faults("up").blackhole && p.faults("down").blackhole).toBe(true);
    expect(runControlLine(p, "set down drop 0.1 ; bandwidth 1000").answer).toMatch(/^ok set down/);
    expect(p.faults("down")).toMatchObject({ dropProbability: 0.1, bytesPerSec: 1000, blackhole: false });
    expect(runControlLine(p, "pass both").answer).toBe("ok both pass");
    expect(runControlLine(p, "delay sideways 3").answer).toMatch(/^error: /);
    expect(runControlLine(p, "reset refuse").answer).toBe("ok reset refuse");
    expect(JSON.parse(runControlLine(p, "stats").answer)).toMatchObject({ connectionsOpen: 0 });
    expect(runControlLine(p, "quit").quit).toBe(true);
  });
});

describe("FaultProxy with gRPC", () => {
  it("passes calls, times them out under a blackhole, and recovers after clear()", async () => {
    const def = fromJSON({
      nested: {
        faultproxytest: {
          nested: {
            Echo: { methods: { Say: { requestType: "Msg", responseType: "Msg", comment: "" } } },
            Msg: { fields: { text: { type: "string", id: 1 } } },
          },
        },
      },
    });
    const pkg = loadPackageDefinition(def)["faultproxytest"] as Record<string, unknown>;
    const Echo = pkg["Echo"] as ServiceClientConstructor;
    const server = new Server();
    server.addService(Echo.service, {
      Say: (call: { request: { text: string } }, cb: (err: null, res: { text: string }) => void) => cb(null, { text: `echo ${call.request.text}` }),
    });
    track(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) => (err === null ? resolve(port) : reject(err))));
    const p = await startProxy({ target: `127.0.0.1:${port}` });
    const client: Client = new Echo(p.address, credentials.createInsecure(), {
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 500,
    });
    track(() => client.close());
    const say = (text: string, deadlineMs: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const method = (client as unknown as Record<string, (req: object, opts: object, cb: (err: ServiceError | null, res?: { text: string }) => void) => void>)["Say"];
        if (method === undefined) throw new Error("No Say method");
        method.call(client, { text }, { deadline: Date.now() + deadlineMs }, (err, res) => (err !== null ? reject(err) : resolve(res?.text ?? "")));
      });

    expect(await say("a", 5_000)).toBe("echo a");

    p.set({ direction: "both", fault: { kind: "blackhole" } });
    const t0 = performance.now();
    await expect(say("b", 500)).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(450);

    p.clear();
    // The blackhole left a gap in the HTTP/2 stream, so the connection may break: retry until it reconnects.
    const deadline = performance.now() + 8_000;
    let answer: string | undefined;
    let attempts = 0;
    while (answer === undefined && performance.now() < deadline) {
      attempts += 1;
      answer = await say("c", 1_000).catch(() => undefined);
    }
    expect(answer).toBe("echo c");
    expect(attempts).toBeLessThan(20);
  });
});

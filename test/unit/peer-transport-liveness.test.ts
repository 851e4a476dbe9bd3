/**
 * Peer links recover from faults that leave no error behind: a link that
 * discarded the bytes of a stream's handshake (a hole in the TCP stream,
 * nothing reset), as a peer that accepts connections and never answers
 * would. Real transports over loopback, through the fault proxy.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { asEpoch, asNodeId } from "../../src/core/types.js";
import { PEER_OPEN_TIMEOUT_MS, PeerTransport, replicationServiceDefinition } from "../../src/rpc/peer-transport.js";
import { FaultProxy } from "../../tools/fault-proxy.js";
import { freePorts } from "../integration/harness.js";

const logger = pino({ level: "silent" });

async function serve(t: PeerTransport, port: number): Promise<Server> {
  const server = new Server();
  server.addService(replicationServiceDefinition(), { Exchange: t.handleExchange });
  await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
  return server;
}

async function until(what: string, probe: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!probe()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

describe("peer transport liveness", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it("gives up a stream whose handshake was lost and opens another", async () => {
    let receivedAtB = 0;
    // a reaches b through the proxy; b reaches a directly.
    const [pa, pb] = await freePorts(2);
    const proxy = await FaultProxy.start({ target: `127.0.0.1:${pb}`, seed: 7 });
    cleanup.push(() => proxy.close());
    const a = new PeerTransport({ nodeId: asNodeId("a"), peers: [{ id: asNodeId("b"), address: proxy.address }], logger, onMessage: () => undefined });
    const b = new PeerTransport({ nodeId: asNodeId("b"), peers: [{ id: asNodeId("a"), address: `127.0.0.1:${pa}` }], logger, onMessage: () => receivedAtB++ });
    const as = await serve(a, pa ?? 0);
    const bs = await serve(b, pb ?? 0);
    cleanup.push(() => as.forceShutdown(), () => a.close(), () => bs.forceShutdown(), () => b.close());
    // The link discards every byte from the start: a's stream gets no answer (and no error, no reset).
    proxy.set({ direction: "both", fault: { kind: "blackhole" } });
    a.start();
    b.start();
    const send = setInterval(() => a.send(asNodeId("b"), "v", { type: "release", epoch: asEpoch(1) }), 20);
    cleanup.push(() => clearInterval(send));
    await new Promise((r) => setTimeout(r, 1_000));
    proxy.clear();
    // The connection that lost its handshake is given up and a new one opened: messages flow within the bound.
    const took = await until("messages flow from a to b", () => receivedAtB > 10, PEER_OPEN_TIMEOUT_MS + 5_000);
    expect(took).toBeLessThan(PEER_OPEN_TIMEOUT_MS + 5_000);
  }, 40_000);

  it("opens its stream again at once when the peer it could not reach reaches it", async () => {
    const [pa, pb] = await freePorts(2);
    const lines: string[] = [];
    const captured = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
    const a = new PeerTransport({ nodeId: asNodeId("a"), peers: [{ id: asNodeId("b"), address: `127.0.0.1:${pb}` }], logger: captured, onMessage: () => undefined });
    const as = await serve(a, pa ?? 0);
    cleanup.push(() => as.forceShutdown(), () => a.close());
    // b is not up: a's stream fails, and a waits longer before each new try.
    a.start();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(a.connectedPeers()).toEqual([]);
    const b = new PeerTransport({ nodeId: asNodeId("b"), peers: [{ id: asNodeId("a"), address: `127.0.0.1:${pa}` }], logger, onMessage: () => undefined });
    const bs = await serve(b, pb ?? 0);
    cleanup.push(() => bs.forceShutdown(), () => b.close());
    // b comes up and opens its stream to a: a opens its own to b then, not when its wait is over.
    b.start();
    await until("a's stream to b is open", () => a.connectedPeers().includes(asNodeId("b")), 5_000);
    expect(lines.filter((l) => l.includes("peer is back"))).toHaveLength(1);
  }, 20_000);
});

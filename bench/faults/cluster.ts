/**
 * A volnode cluster for the fault benchmarks: real processes on loopback,
 * every link through a TCP fault proxy of this process.
 *
 * Each node gets its own cluster file in which every OTHER node's address
 * is the proxy of the directed link (n1→n2 is proxy peer(n1, n2), which
 * forwards to n2's real address); `--listen` stays the node's real address.
 * Peer transports send on their own outgoing stream only, so "n1 cannot
 * reach n2" is `up` of peer(n1, n2) cut. Clients get a cluster file whose
 * addresses are client→node proxies; the runner's admin calls use the real
 * addresses (clientFile vs adminFile).
 *
 * Every child is tracked by PID and ended by close() (SIGCONT, SIGTERM, then
 * SIGKILL after a timeout), and SIGKILLed at process exit as a last resort.
 * Never by name.
 *
 * --netns (root): with `netns: true` there are no proxies. Each node runs in
 * its own network namespace (netns.ts) at its peer address, clients use its
 * client address, and cutOneWay, cutBoth, setClientLink (blackhole or
 * stall only) and healNetwork set and remove iptables DROP rules there
 * instead; peerProxy and clientProxy throw. close() deletes the namespaces.
 */
import { Client, credentials } from "@grpc/grpc-js";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { adminUnary, followOutput, freePorts, isListeningLine, volnodeCommand, withTimeout } from "../../test/integration/harness.js";
import { FaultProxy, type DirectionSelector, type Fault } from "../../tools/fault-proxy.js";
import { NetnsNetwork } from "./netns.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const ADMIN_DEADLINE_MS = 10_000;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface FaultNode {
  readonly id: string;
  readonly port: number;
  /** Real address, 127.0.0.1:port (--netns: its peer address, 10.213.K.I:port). */
  readonly address: string;
  readonly dataDir: string;
  /** Its own cluster file (peers through proxies). */
  readonly clusterFile: string;
  pid: number | null;
  stderr: string;
  /** Last stdout lines (pino JSON). */
  readonly lines: string[];
}

export interface FaultClusterOptions {
  readonly dir: string;
  readonly nodes: number;
  /** Extra environment for every volnode (REPLIVOL_TEST_ONLY_BUGS, ...). */
  readonly env?: Readonly<Record<string, string>>;
  /** Per-node extra environment. */
  readonly nodeEnv?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Per-node data directory (for example on a tmpfs); default DIR/<id>. */
  readonly dataDirs?: Readonly<Record<string, string>>;
  readonly seed?: number;
  /** --netns: nodes in network namespaces, faults by iptables (netns.ts) instead of proxies. */
  readonly netns?: boolean;
  /** --netns: called once a cut's rules are in place (a cut takes a few exec's, a proxy's set() none). */
  readonly onNetnsCut?: () => void;
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
}

const allChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Children of this process still alive at exit are SIGKILLed (by PID). */
export function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const c of allChildren) {
        if (c.exitCode === null && c.signalCode === null) {
          try {
            c.kill("SIGCONT");
            c.kill("SIGKILL");
          } catch {
            // already gone
          }
        }
      }
    });
  }
  allChildren.add(child);
  child.on("exit", () => allChildren.delete(child));
}

export { withTimeout };

export class FaultCluster {
  readonly nodes: FaultNode[] = [];
  /** Cluster file for clients: every address a client→node proxy. */
  readonly clientFile: string;
  /** Cluster file with real addresses, for the runner's admin calls and final checks. */
  readonly adminFile: string;
  private readonly peerProxies = new Map<string, FaultProxy>();
  private readonly clientProxies = new Map<string, FaultProxy>();
  private readonly running = new Map<string, Running>();
  private readonly admins = new Map<string, Client>();
  private readonly stopped = new Set<string>();
  private closed = false;
  /** Children this cluster ends itself: "any" way (SIGKILL), or "clean" (SIGTERM: must exit 0). */
  private readonly expectedExits = new Map<ChildProcess, "any" | "clean">();
  /**
   * Nodes that exited without being ended by the scenario: a broken
   * invariant of the core (volnode exits on one), a crash. Every entry fails
   * the run.
   */
  readonly selfExits: string[] = [];
  /** --netns only. */
  private net: NetnsNetwork | null = null;

  private constructor(private readonly opts: FaultClusterOptions) {
    this.clientFile = path.join(opts.dir, "cluster-clients.yaml");
    this.adminFile = path.join(opts.dir, "cluster-admin.yaml");
  }

  static async start(opts: FaultClusterOptions): Promise<FaultCluster> {
    const c = new FaultCluster(opts);
    try {
      await c.setUp();
      await Promise.all(c.nodes.map((n) => c.launch(n)));
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async setUp(): Promise<void> {
    const ids = Array.from({ length: this.opts.nodes }, (_, i) => `n${i + 1}`);
    if (this.opts.netns === true) return this.setUpNetns(ids);
    const ports = await freePorts(ids.length);
    for (const [i, id] of ids.entries()) {
      const port = ports[i];
      if (port === undefined) throw new Error("No port");
      const dataDir = this.opts.dataDirs?.[id] ?? path.join(this.opts.dir, id);
      await mkdir(dataDir, { recursive: true });
      this.nodes.push({ id, port, address: `127.0.0.1:${port}`, dataDir, clusterFile: path.join(this.opts.dir, `cluster-${id}.yaml`), pid: null, stderr: "", lines: [] });
    }
    let seed = this.opts.seed ?? 1;
    for (const from of this.nodes) {
      for (const to of this.nodes) {
        if (from === to) continue;
        this.peerProxies.set(`${from.id}>${to.id}`, await FaultProxy.start({ target: to.address, seed: seed++ }));
      }
      this.clientProxies.set(from.id, await FaultProxy.start({ target: from.address, seed: seed++ }));
    }
    const file = (addr: (n: FaultNode) => string): string => `nodes:\n${this.nodes.map((n) => `  - id: ${n.id}\n    address: ${addr(n)}\n`).join("")}`;
    for (const me of this.nodes) await writeFile(me.clusterFile, file((n) => (n === me ? n.address : this.peerProxy(me.id, n.id).address)));
    await writeFile(this.clientFile, file((n) => this.clientProxy(n.id).address));
    await writeFile(this.adminFile, file((n) => n.address));
  }

  /** --netns: namespaces; peers' and admin files get peer addresses, the clients' file client addresses. */
  private async setUpNetns(ids: readonly string[]): Promise<void> {
    const net = await NetnsNetwork.create(ids);
    this.net = net;
    for (const id of ids) {
      const nn = net.node(id);
      const dataDir = this.opts.dataDirs?.[id] ?? path.join(this.opts.dir, id);
      await mkdir(dataDir, { recursive: true });
      this.nodes.push({ id, port: nn.port, address: `${nn.peerIp}:${nn.port}`, dataDir, clusterFile: path.join(this.opts.dir, `cluster-${id}.yaml`), pid: null, stderr: "", lines: [] });
    }
    const file = (addr: (n: FaultNode) => string): string => `nodes:\n${this.nodes.map((n) => `  - id: ${n.id}\n    address: ${addr(n)}\n`).join("")}`;
    for (const me of this.nodes) await writeFile(me.clusterFile, file((n) => n.address));
    await writeFile(this.clientFile, file((n) => `${net.node(n.id).clientIp}:${n.port}`));
    await writeFile(this.adminFile, file((n) => n.address));
  }

  /** --netns: the namespaces (null in proxy mode). */
  netns(): NetnsNetwork | null {
    return this.net;
  }

  node(id: string): FaultNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`No node ${id} in this cluster`);
    return n;
  }

  ids(): string[] {
    return this.nodes.map((n) => n.id);
  }

  peerProxy(from: string, to: string): FaultProxy {
    const p = this.peerProxies.get(`${from}>${to}`);
    if (p === undefined) throw new Error(this.net === null ? `No link ${from}→${to}` : "No proxies with --netns");
    return p;
  }

  clientProxy(to: string): FaultProxy {
    const p = this.clientProxies.get(to);
    if (p === undefined) throw new Error(this.net === null ? `No client link to ${to}` : "No proxies with --netns");
    return p;
  }

  allProxies(): FaultProxy[] {
    return [...this.peerProxies.values(), ...this.clientProxies.values()];
  }

  /** `from` can no longer send to `to` (messages lost; the other direction works). */
  cutOneWay(from: string, to: string, fault: Fault = { kind: "blackhole" }): void {
    if (this.net !== null) {
      netnsDrop(fault);
      this.net.cutOneWay(from, to);
      this.opts.onNetnsCut?.();
      return;
    }
    this.peerProxy(from, to).set({ direction: "up", fault });
    this.peerProxy(to, from).set({ direction: "down", fault });
  }

  /** Both directions between `a` and `b`. */
  cutBoth(a: string, b: string, fault: Fault = { kind: "blackhole" }): void {
    if (this.net !== null) {
      netnsDrop(fault);
      this.net.cutBoth(a, b);
      this.opts.onNetnsCut?.();
      return;
    }
    this.peerProxy(a, b).set({ direction: "both", fault });
    this.peerProxy(b, a).set({ direction: "both", fault });
  }

  setClientLink(to: string, direction: DirectionSelector, fault: Fault | readonly Fault[]): void {
    if (this.net !== null) {
      netnsDrop(fault);
      this.net.cutClients(to, direction);
      this.opts.onNetnsCut?.();
      return;
    }
    this.clientProxy(to).set({ direction, fault });
  }

  /** Every proxy back to pass. */
  healNetwork(): void {
    if (this.net !== null) {
      this.net.heal();
      return;
    }
    for (const p of this.allProxies()) p.clear();
  }

  isUp(id: string): boolean {
    return this.running.has(id);
  }

  async launch(n: FaultNode): Promise<void> {
    if (this.running.has(n.id)) throw new Error(`Node ${n.id} is already running`);
    const listen = this.net === null ? n.address : `0.0.0.0:${n.port}`;
    const base = volnodeCommand(["--id", n.id, "--listen", listen, "--data", n.dataDir, "--cluster", n.clusterFile]);
    const cmd = this.net === null ? base : this.net.wrap(n.id, base.command, base.args);
    const env = { ...process.env, REPLIVOL_LOG_LEVEL: "info", ...this.opts.env, ...this.opts.nodeEnv?.[n.id] };
    const child = spawn(cmd.command, cmd.args, { stdio: ["ignore", "pipe", "pipe"], env, cwd: ROOT });
    if (child.pid === undefined) throw new Error(`Cannot start volnode ${n.id}`);
    trackChild(child);
    n.pid = child.pid;
    n.stderr = "";
    this.stopped.delete(n.id);
    const exited = new Promise<ExitStatus>((resolve) => {
      child.on("exit", (code, signal) => {
        if (this.running.get(n.id)?.child === child) this.running.delete(n.id);
        if (n.pid === child.pid) n.pid = null;
        resolve({ code, signal });
      });
    });
    this.running.set(n.id, { child, exited });
    // On "close", not "exit": its last log lines (a fatal one) are read by then.
    child.on("close", (code, signal) => {
      const expected = this.expectedExits.get(child);
      this.expectedExits.delete(child);
      if (this.closed || expected === "any" || (expected === "clean" && code === 0)) return;
      const how = expected === "clean" ? "did not stop cleanly on SIGTERM" : "exited by itself";
      this.selfExits.push(`volnode ${n.id} ${how} (code ${code}, signal ${signal})${lastWords(n)}`);
    });
    let listening = false;
    let onListening: (() => void) | null = null;
    followOutput(child, n, 2000, (line) => {
      if (listening || !isListeningLine(line)) return;
      listening = true;
      // --netns: `ip netns exec` must have exec'd volnode, or PIDs would name the wrong process.
      if (this.net !== null && !line.includes(`"pid":${child.pid}`)) {
        n.stderr += `\nvolnode ${n.id} logged another pid than its child's ${child.pid}: ${line}`;
        this.expectedExits.set(child, "any");
        child.kill("SIGKILL");
      } else onListening?.();
    });
    const ready = new Promise<void>((resolve, reject) => {
      onListening = resolve;
      if (listening) resolve();
      void exited.then((s) => reject(new Error(`volnode ${n.id} exited (code ${s.code}, signal ${s.signal}) before listening; stderr: ${n.stderr}`)));
    });
    try {
      await withTimeout(ready, START_TIMEOUT_MS, `volnode ${n.id} start`);
    } catch (err) {
      this.expectedExits.set(child, "any");
      child.kill("SIGKILL");
      await exited;
      throw err;
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL, SIGTERM). */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<ExitStatus> {
    const r = this.running.get(id);
    if (r === undefined) throw new Error(`Node ${id} is not running`);
    this.expectedExits.set(r.child, signal === "SIGTERM" ? "clean" : "any");
    if (this.stopped.has(id)) r.child.kill("SIGCONT");
    this.stopped.delete(id);
    r.child.kill(signal);
    try {
      return await withTimeout(r.exited, STOP_TIMEOUT_MS, `volnode ${id} exit after ${signal}`);
    } catch (err) {
      r.child.kill("SIGKILL");
      await r.exited;
      throw err;
    }
  }

  async restart(id: string): Promise<void> {
    await this.launch(this.node(id));
  }

  /** SIGSTOP: the process freezes with its sockets open (a zombie). */
  pause(id: string): void {
    const r = this.running.get(id);
    if (r === undefined) throw new Error(`Node ${id} is not running`);
    this.stopped.add(id);
    r.child.kill("SIGSTOP");
  }

  resume(id: string): void {
    const r = this.running.get(id);
    if (r === undefined) return;
    this.stopped.delete(id);
    r.child.kill("SIGCONT");
  }

  adminCall<T = Record<string, unknown>>(nodeId: string, method: string, request: object, deadlineMs = ADMIN_DEADLINE_MS): Promise<T> {
    let client = this.admins.get(nodeId);
    if (client === undefined) {
      client = new Client(this.node(nodeId).address, credentials.createInsecure());
      this.admins.set(nodeId, client);
    }
    return adminUnary<T>(client, method, request, deadlineMs);
  }


  async createVolume(name: string, blockCount: number): Promise<void> {
    const config = { name, blockCount, blockSize: 4096, replicas: this.ids(), configVersion: 1 };
    await Promise.all(this.ids().map((id) => this.adminCall(id, "CreateReplica", { config })));
  }

  /** Ends every node (SIGCONT, SIGKILL: nothing of their state is needed any more) and every proxy. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.admins.values()) c.close();
    const all = [...this.running.values()];
    for (const r of all) {
      r.child.kill("SIGCONT");
      r.child.kill("SIGKILL");
    }
    await Promise.all(all.map((r) => withTimeout(r.exited, STOP_TIMEOUT_MS, "volnode exit after SIGKILL").catch(() => undefined)));
    await Promise.all(this.allProxies().map((p) => p.close().catch(() => undefined)));
    await this.net?.destroy().catch((err: unknown) => process.stderr.write(`${String(err)}\n`));
  }
}

/** Why the node took a replica out of service (its last "replica out of service" log line), or null. */
export function outOfServiceReason(n: FaultNode): string | null {
  for (let i = n.lines.length - 1; i >= 0; i--) {
    const line = n.lines[i] ?? "";
    if (!line.includes('"replica out of service"')) continue;
    try {
      const e = (JSON.parse(line) as { err?: { message?: unknown } }).err;
      return typeof e?.message === "string" ? e.message : "replica out of service";
    } catch {
      return "replica out of service";
    }
  }
  return null;
}

/** The node's fatal log line, else the end of its stderr, for a report. */
function lastWords(n: FaultNode): string {
  for (let i = n.lines.length - 1; i >= 0 && i >= n.lines.length - 50; i--) {
    const line = n.lines[i] ?? "";
    if (line.includes('"level":60')) return `: ${line.slice(0, 400)}`;
  }
  const err = n.stderr.trim();
  return err === "" ? "" : `: ${err.slice(-400)}`;
}

/** --netns: a cut is an iptables DROP, TCP retransmits: the proxy's "stall" or "blackhole" only. */
function netnsDrop(fault: Fault | readonly Fault[]): void {
  const all: readonly Fault[] = Array.isArray(fault) ? fault : [fault as Fault];
  for (const f of all) if (f.kind !== "blackhole" && f.kind !== "stall") throw new Error(`--netns: a ${f.kind} fault needs the proxy (or tc netem): only cuts (blackhole, stall) are iptables rules`);
}

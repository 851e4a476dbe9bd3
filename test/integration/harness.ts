/**
 * Real volnode processes on loopback for integration tests.
 *
 *   const c = await startCluster({ nodes: 3 });
 *   try { await c.createVolume("vol1", 1024); ... } finally { await c.stop(); }
 *
 * Every child is tracked by PID and ended by stop() (SIGTERM, then SIGKILL
 * after a timeout); a test calls stop() in afterEach/afterAll whatever
 * happens. As a last resort, children still alive when the test process
 * exits are SIGKILLed. Every wait has a timeout. Only 127.0.0.1.
 */
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { adminService } from "../../src/rpc/proto.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VOLNODE = path.join(ROOT, "src/node/volnode.ts");
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const ADMIN_DEADLINE_MS = 15_000;
const OUTPUT_LINES_KEPT = 5000;

export interface HarnessNode {
  readonly id: string;
  /** 127.0.0.1:port */
  readonly address: string;
  readonly port: number;
  readonly dataDir: string;
  /** PID of the running volnode, null while it is down. */
  pid: number | null;
  /** Its stdout lines (pino JSON), the most recent kept; across restarts. */
  readonly lines: string[];
  stderr: string;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface TestCluster {
  readonly dir: string;
  readonly clusterFile: string;
  readonly nodes: readonly HarnessNode[];
  node(id: string): HarnessNode;
  /** Sends `signal` (default SIGKILL) to the node and waits for it to exit. */
  kill(id: string, signal?: NodeJS.Signals): Promise<ExitStatus>;
  /** Starts a node that is down again, on the same port and data directory; waits until it listens. */
  restart(id: string): Promise<void>;
  /** SIGTERM every node, SIGKILL the ones still alive after a timeout, remove the temp directory. */
  stop(): Promise<void>;
  adminCall<T = Record<string, unknown>>(nodeId: string, method: string, request: object): Promise<T>;
  /** CreateReplica on each replica node (default: every node). */
  createVolume(name: string, blockCount: number, replicas?: readonly string[]): Promise<void>;
}

export interface StartClusterOptions {
  readonly nodes: number;
  /** A directory to work in (kept by stop()); default a fresh temp directory (removed by stop()). */
  readonly dir?: string;
  readonly env?: Readonly<Record<string, string>>;
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
}

/** Every volnode any harness started in this process, for the exit-time safety net. */
const allChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of allChildren) {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
  });
}

/**
 * Ports below the kernel's ephemeral range (ip_local_port_range), where no
 * outgoing connection and no listen(0) of any process takes a local port:
 * a node's port stays free while the node is down (unless another test
 * running alongside happens to pick the same one from the 12,000: each
 * starts at a random point), so a test that kills a node can start it
 * again on the same port. (A port from listen(0) lies in
 * the ephemeral range, and once its node was killed, the next outgoing
 * connection of any test running alongside could take it: EADDRINUSE at
 * the restart.) null where the range leaves too little room below it.
 */
const STABLE_PORTS: { readonly first: number; readonly count: number } | null = (() => {
  let low = 32768;
  try {
    const [first] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (first !== undefined && Number.isInteger(first)) low = first;
  } catch {
    // Not Linux: the usual default.
  }
  const first = Math.max(10_000, low - 12_000);
  return low - first >= 1_000 ? { first, count: low - first } : null;
})();

function listenOn(server: Server, port: number): Promise<number | null> {
  return new Promise<number | null>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve(null);
      else reject(err);
    };
    server.once("error", onError);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError);
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("No port"));
      else resolve(address.port);
    });
  });
}

/**
 * `count` distinct free loopback ports for nodes, below the ephemeral range
 * (see STABLE_PORTS), tried from a random point so that tests running at
 * once rarely try the same ones. All sockets stay bound until every port is
 * known: binding and closing one at a time can hand out the same port twice.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    const range = STABLE_PORTS;
    let next = range === null ? 0 : range.first + Math.floor(Math.random() * range.count);
    for (let tries = 0; ports.length < count; tries++) {
      if (range !== null && tries > 500) throw new Error(`No ${count} free ports from ${range.first} to ${range.first + range.count - 1}`);
      const server = createServer();
      server.unref();
      const port = range === null ? 0 : range.first + ((next++ - range.first) % range.count);
      const got = await listenOn(server, port);
      if (got === null) continue;
      servers.push(server);
      ports.push(got);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** One free loopback port. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error("No port");
  return port;
}

/** `p`, or a rejection naming `what` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Extra Node.js flags for every volnode (for example `--cpu-prof --cpu-prof-dir=/tmp/prof`), space-separated. */
const VOLNODE_NODE_FLAGS = (process.env["REPLIVOL_VOLNODE_NODE_FLAGS"] ?? "").split(" ").filter((f) => f !== "");

/** The compiled volnode (npm run build), which REPLIVOL_VOLNODE_BUILT=1 runs instead of src/ through tsx. */
const VOLNODE_BUILT = path.join(ROOT, "dist/src/node/volnode.js");

/**
 * How to start a volnode: from src/ through tsx (as the tests and npm start
 * do), or, with REPLIVOL_VOLNODE_BUILT=1, the compiled JavaScript of dist/
 * as an installed replivol runs it (the cluster benchmark: tsx's loader
 * thread alone adds about 30 MiB to each node's resident memory).
 */
export function volnodeCommand(args: readonly string[]): { command: string; args: string[] } {
  if (process.env["REPLIVOL_VOLNODE_BUILT"] === "1") {
    if (!existsSync(VOLNODE_BUILT)) throw new Error(`REPLIVOL_VOLNODE_BUILT=1 but ${VOLNODE_BUILT} is missing: run npm run build first`);
    return { command: process.execPath, args: [...VOLNODE_NODE_FLAGS, VOLNODE_BUILT, ...args] };
  }
  return { command: process.execPath, args: [...VOLNODE_NODE_FLAGS, "--import", "tsx", VOLNODE, ...args] };
}

/**
 * Keeps a volnode's stdout (pino JSON) as lines in `n.lines`, the last
 * `linesKept`, calling `onLine` with each, and the end of its stderr in
 * `n.stderr`.
 */
export function followOutput(child: ChildProcess, n: { readonly lines: string[]; stderr: string }, linesKept: number, onLine: (line: string) => void): void {
  let partial = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    partial += chunk;
    for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      n.lines.push(line);
      if (n.lines.length > linesKept) n.lines.splice(0, n.lines.length - linesKept);
      onLine(line);
    }
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    n.stderr = (n.stderr + chunk).slice(-8000);
  });
}

/** volnode's log line saying it accepts connections. */
export function isListeningLine(line: string): boolean {
  return line.includes('"msg":"listening"');
}

/** One call of the Admin service (proto/volume.proto) on `client`, failing after `deadlineMs`. */
export function adminUnary<T>(client: Client, method: string, request: object, deadlineMs: number): Promise<T> {
  const def = adminService().service[method];
  if (def === undefined) return Promise.reject(new Error(`Admin has no method ${method}`));
  return new Promise<T>((resolve, reject) => {
    client.makeUnaryRequest(
      def.path,
      (m: object) => def.requestSerialize(m),
      (b: Buffer) => def.responseDeserialize(b) as T,
      request,
      new Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err: ServiceError | null, res?: T) => {
        if (err !== null) reject(err);
        else resolve(res as T);
      },
    );
  });
}

export async function startCluster(opts: StartClusterOptions): Promise<TestCluster> {
  installExitHook();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), "replivol-it-")));
  const nodes: HarnessNode[] = [];
  const ports = await freePorts(opts.nodes);
  for (let i = 1; i <= opts.nodes; i++) {
    const port = ports[i - 1];
    if (port === undefined) throw new Error("No port");
    const dataDir = path.join(dir, `n${i}`);
    await mkdir(dataDir, { recursive: true });
    nodes.push({ id: `n${i}`, address: `127.0.0.1:${port}`, port, dataDir, pid: null, lines: [], stderr: "" });
  }
  const clusterFile = path.join(dir, "cluster.yaml");
  await writeFile(clusterFile, `nodes:\n${nodes.map((n) => `  - id: ${n.id}\n    address: ${n.address}\n`).join("")}`);

  const running = new Map<string, Running>();
  const clients = new Map<string, Client>();
  let stopped = false;

  const node = (id: string): HarnessNode => {
    const n = nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`No node ${id} in this cluster`);
    return n;
  };

  const launch = async (n: HarnessNode): Promise<void> => {
    if (running.has(n.id)) throw new Error(`Node ${n.id} is already running`);
    const cmd = volnodeCommand(["--id", n.id, "--listen", n.address, "--data", n.dataDir, "--cluster", clusterFile]);
    const child = spawn(cmd.command, cmd.args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env }, cwd: ROOT });
    if (child.pid === undefined) throw new Error(`Cannot start volnode ${n.id}`);
    allChildren.add(child);
    n.pid = child.pid;
    n.stderr = "";
    const exited = new Promise<ExitStatus>((resolve) => {
      child.on("exit", (code, signal) => {
        allChildren.delete(child);
        if (running.get(n.id)?.child === child) running.delete(n.id);
        if (n.pid === child.pid) n.pid = null;
        resolve({ code, signal });
      });
    });
    running.set(n.id, { child, exited });
    let listening = false;
    const listeners = new Set<() => void>();
    followOutput(child, n, OUTPUT_LINES_KEPT, (line) => {
      if (!listening && isListeningLine(line)) {
        listening = true;
        for (const l of listeners) l();
      }
    });
    const ready = new Promise<void>((resolve, reject) => {
      listeners.add(resolve);
      void exited.then((s) => reject(new Error(`volnode ${n.id} exited (code ${s.code}, signal ${s.signal}) before listening; stderr: ${n.stderr}`)));
    });
    try {
      await withTimeout(ready, START_TIMEOUT_MS, `volnode ${n.id} start`);
    } catch (err) {
      child.kill("SIGKILL");
      await exited;
      throw err;
    }
  };

  const kill = async (id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<ExitStatus> => {
    const r = running.get(id);
    if (r === undefined) throw new Error(`Node ${id} is not running`);
    r.child.kill(signal);
    try {
      return await withTimeout(r.exited, STOP_TIMEOUT_MS, `volnode ${id} exit after ${signal}`);
    } catch (err) {
      r.child.kill("SIGKILL");
      await r.exited;
      throw err;
    }
  };

  const adminClient = (nodeId: string): Client => {
    let c = clients.get(nodeId);
    if (c === undefined) {
      c = new Client(node(nodeId).address, credentials.createInsecure());
      clients.set(nodeId, c);
    }
    return c;
  };

  const adminCall = <T>(nodeId: string, method: string, request: object): Promise<T> => {
    return adminUnary<T>(adminClient(nodeId), method, request, ADMIN_DEADLINE_MS);
  };

  const cluster: TestCluster = {
    dir,
    clusterFile,
    nodes,
    node,
    kill,
    async restart(id) {
      await launch(node(id));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of clients.values()) c.close();
      const all = [...running.values()];
      for (const r of all) r.child.kill("SIGTERM");
      await Promise.all(
        all.map(async (r) => {
          try {
            await withTimeout(r.exited, STOP_TIMEOUT_MS, "volnode exit after SIGTERM");
          } catch {
            r.child.kill("SIGKILL");
            await withTimeout(r.exited, STOP_TIMEOUT_MS, "volnode exit after SIGKILL").catch(() => undefined);
          }
        }),
      );
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
    adminCall,
    async createVolume(name, blockCount, replicas) {
      const on = replicas ?? nodes.map((n) => n.id);
      const config = { name, blockCount, blockSize: 4096, replicas: on, configVersion: 1 };
      await Promise.all(on.map((id) => adminCall(id, "CreateReplica", { config })));
    },
  };

  try {
    await Promise.all(nodes.map((n) => launch(n)));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * Polls `probe` until it returns something other than null (errors count as
 * "not yet"), every `everyMs`, for at most `timeoutMs`; then fails naming
 * `what` and the last error.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < until) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (last error: ${String(last)})`);
}

/** A replica's digest per region of its stored block checksums (Admin.RegionChecksums). */
export type RegionSums = { appliedLsn: number; stable: boolean; digests: number[] };

/**
 * The region digests of `volume` on `nodes`, once every one of them reports
 * a stable answer at the same applied point (the same history applied):
 * the caller compares them (P4 through the nodes' own checksums).
 */
export function sameHistorySums(c: TestCluster, nodes: readonly string[], volume: string, timeoutMs = 20_000): Promise<RegionSums[]> {
  return waitFor(
    `the replicas of ${volume} on ${nodes.join(",")} applied the same history`,
    async () => {
      const all = await Promise.all(nodes.map((id) => c.adminCall<RegionSums>(id, "RegionChecksums", { volume })));
      return all.every((x) => x.stable && x.appliedLsn === all[0]?.appliedLsn) ? all : null;
    },
    timeoutMs,
  );
}

/** A follower as its primary's ReplicaStatus shows it (the fields the resync tests and bench read). */
export type FollowerStatus = {
  node: string;
  consistent: boolean;
  resyncing: boolean;
  matchLsn: number;
  lastResyncRegions: number;
  lastResyncBytes: number;
  lastResyncMs: number;
};

/**
 * Waits until `primary` reports `follower` of `volume` consistent, caught up
 * with its commit point and done with a resync that moved bytes; the
 * follower's status then (its last resync's regions, bytes and time).
 */
export function resyncedFollower(c: TestCluster, primary: string, follower: string, volume: string, timeoutMs: number, everyMs = 100): Promise<FollowerStatus> {
  return waitFor(
    `${follower} back in sync with ${primary} after a resync of ${volume}`,
    async () => {
      const s = await c.adminCall<{ commitLsn: number; followers: FollowerStatus[] }>(primary, "ReplicaStatus", { volume });
      const f = s.followers.find((x) => x.node === follower);
      return f !== undefined && f.consistent && !f.resyncing && f.matchLsn >= s.commitLsn && f.lastResyncBytes > 0 ? f : null;
    },
    timeoutMs,
    everyMs,
  );
}

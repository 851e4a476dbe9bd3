/**
 * `npm start`: a local 3-node cluster on 127.0.0.1:7101-7103 with its data
 * under ./.replivol/, a 1 GiB volume `demo`, and a clean stop on Ctrl-C.
 *
 * The nodes run through tsx (a devDependency, so `npm ci && npm start` on a
 * fresh clone needs no build step). Each node is its own process group, so
 * Ctrl-C reaches only this launcher, which sends each node exactly one
 * SIGTERM and waits for it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { connect, type Cluster } from "../src/client/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const STATE_DIR = path.join(ROOT, ".replivol");
const CLUSTER_FILE = path.join(STATE_DIR, "cluster.yaml");
const NODES = [
  { id: "n1", port: 7101 },
  { id: "n2", port: 7102 },
  { id: "n3", port: 7103 },
] as const;
const DEMO_VOLUME = "demo";
const DEMO_SIZE_BYTES = 1024 ** 3;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

interface RunningNode {
  readonly id: string;
  readonly address: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

const running: RunningNode[] = [];
let stopping = false;

function rel(p: string): string {
  return `./${path.relative(process.cwd(), p)}`;
}

async function startNode(id: string, port: number): Promise<RunningNode> {
  const address = `127.0.0.1:${port}`;
  const dataDir = path.join(STATE_DIR, id);
  const logFile = path.join(STATE_DIR, "logs", `${id}.log`);
  await mkdir(dataDir, { recursive: true });
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/node/volnode.ts"), "--id", id, "--listen", address, "--data", dataDir, "--cluster", CLUSTER_FILE], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout?.pipe(log);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000);
    log.write(chunk);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      if (!stopping) {
        process.stderr.write(`Node ${id} exited (code ${code}): ${stderr.trim() || `see ${rel(logFile)}`}\n`);
      }
      resolve(code);
    });
  });
  return { id, address, dataDir, logFile, child, exited };
}

async function waitUntilUp(cluster: Cluster): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const nodes = await cluster.nodeStatus();
    if (nodes.every((n) => n.up)) return;
    const dead = running.find((n) => n.child.exitCode !== null);
    if (dead !== undefined) throw new Error(`Node ${dead.id} did not start: see ${rel(dead.logFile)} (is another 'npm start' running, or a port of 7101-7103 taken?)`);
    if (Date.now() > deadline) {
      throw new Error(`Nodes ${nodes.filter((n) => !n.up).map((n) => n.id).join(", ")} did not answer within ${READY_TIMEOUT_MS} ms: see ${rel(path.join(STATE_DIR, "logs"))}`);
    }
    await sleep(100);
  }
}

async function stopAll(): Promise<void> {
  stopping = true;
  for (const n of running) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill("SIGTERM");
  await Promise.all(
    running.map(async (n) => {
      const timedOut = await Promise.race([n.exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
      if (timedOut) {
        process.stderr.write(`Node ${n.id} did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM: killing it\n`);
        n.child.kill("SIGKILL");
        await n.exited;
      }
    }),
  );
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  await mkdir(path.join(STATE_DIR, "logs"), { recursive: true });
  await writeFile(CLUSTER_FILE, `# written by npm start (tools/local-cluster.ts)\nnodes:\n${NODES.map((n) => `  - id: ${n.id}\n    address: 127.0.0.1:${n.port}\n`).join("")}`);
  // A last resort if this launcher dies of an error: never leave nodes behind.
  process.on("exit", () => {
    for (const n of running) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill("SIGKILL");
  });
  for (const n of NODES) running.push(await startNode(n.id, n.port));

  const cluster = await connect({ cluster: CLUSTER_FILE });
  try {
    await waitUntilUp(cluster);
    const volumes = await cluster.volumes();
    const created = !volumes.some((v) => v.name === DEMO_VOLUME);
    if (created) await cluster.createVolume(DEMO_VOLUME, { sizeBytes: DEMO_SIZE_BYTES, replicas: 3 });
    const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1);
    const clusterArg = rel(CLUSTER_FILE);
    process.stdout.write(
      [
        `replivol: 3 nodes up in ${elapsed} s`,
        ...running.map((n) => `  ${n.id}  ${n.address}  pid ${n.child.pid ?? "?"}  data ${rel(n.dataDir)}  log ${rel(n.logFile)}`),
        `  cluster file ${clusterArg}`,
        `  volume ${DEMO_VOLUME} (1 GiB, 3 replicas) ${created ? "created" : "already there"}`,
        "",
        "Try:",
        `  npm run volctl -- --cluster ${clusterArg} status`,
        `  echo hello | npm run volctl -- --cluster ${clusterArg} write ${DEMO_VOLUME} --offset 0 -`,
        `  npm run volctl -- --cluster ${clusterArg} read ${DEMO_VOLUME} --offset 0 --length 6`,
        "",
        "Ctrl-C stops every node.",
        "",
      ].join("\n"),
    );
  } finally {
    await cluster.close();
  }
}

let shuttingDown = false;
function shutdown(signal: string): void {
  if (shuttingDown) return;
  shuttingDown = true;
  process.stdout.write(`\n${signal}: stopping ${running.length} nodes...\n`);
  stopAll().then(
    () => {
      process.stdout.write("Stopped.\n");
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`Stopping failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));

try {
  await main();
  // Stay up until a signal; stop if every node has died.
  await Promise.all(running.map((n) => n.exited));
  if (!shuttingDown) {
    process.stderr.write("Every node exited: stopping.\n");
    process.exit(1);
  }
} catch (err) {
  process.stderr.write(`npm start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  process.exit(1);
}

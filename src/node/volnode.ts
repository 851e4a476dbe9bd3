/**
 * volnode: the storage daemon.
 *
 *   volnode --id n1 --data DIR --cluster cluster.yaml [--listen 127.0.0.1:7101]
 *
 * Bad input (flags, cluster file, data directory) exits 2 with one message
 * on stderr; a failure to start (the data directory is locked by another
 * volnode, the address is taken) exits 1. SIGTERM or SIGINT stops it
 * cleanly (exit 0). Logs are pino JSON lines on stdout, level from
 * REPLIVOL_LOG_LEVEL.
 *
 * REPLIVOL_TEST_ONLY_BUGS=name[,name] plants the simulator's bugs (see
 * PLANTED_BUG_NAMES) in this node, so that the fault benchmarks can show
 * they catch them. It logs a warning at start; never set it in production.
 *
 * REPLIVOL_TEST_ONLY_DISK_FAULTS=<control file> makes every write and sync
 * of this node's stores fail with EIO or ENOSPC while that file holds "eio"
 * or "enospc" (see diskFaultsFromControlFile), for the fault benchmarks.
 * It logs a warning at start too; never set it in production.
 */
import { stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { VolumeError } from "../core/errors.js";
import { PLANTED_BUG_NAMES, type TestOnlyPlantedBugs } from "../core/replica.js";
import { asNodeId } from "../core/types.js";
import { loadClusterConfig, NODE_ID_PATTERN, type ClusterConfig } from "../rpc/cluster-config.js";
import { diskFaultsFromControlFile } from "../storage/volume-disk.js";
import { createLogger } from "./logger.js";
import { VolumeNode } from "./volume-node.js";

const USAGE = "usage: volnode --id <node id> --data <dir> --cluster <cluster.yaml> [--listen <host:port>]";

class BadInput extends Error {}

interface Flags {
  readonly id: string;
  readonly data: string;
  readonly cluster: ClusterConfig;
  readonly listen: string;
  readonly bugs: TestOnlyPlantedBugs | null;
}

function plantedBugs(spec: string | undefined): TestOnlyPlantedBugs | null {
  if (spec === undefined || spec.trim() === "") return null;
  const bugs: Partial<Record<keyof TestOnlyPlantedBugs, boolean>> = {};
  for (const name of spec.split(",").map((s) => s.trim())) {
    const key = (PLANTED_BUG_NAMES as Record<string, keyof TestOnlyPlantedBugs>)[name];
    if (key === undefined) throw new BadInput(`Unknown planted bug ${JSON.stringify(name)} in REPLIVOL_TEST_ONLY_BUGS: known are ${Object.keys(PLANTED_BUG_NAMES).join(", ")}`);
    bugs[key] = true;
  }
  return bugs;
}

async function readFlags(argv: readonly string[]): Promise<Flags> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { id: { type: "string" }, data: { type: "string" }, cluster: { type: "string" }, listen: { type: "string" }, help: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new BadInput(`${(err as Error).message} (${USAGE})`);
  }
  if (values["help"] === true) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const id = values["id"];
  const data = values["data"];
  const clusterFile = values["cluster"];
  if (typeof id !== "string" || typeof data !== "string" || typeof clusterFile !== "string") throw new BadInput(`--id, --data and --cluster are required (${USAGE})`);
  if (!NODE_ID_PATTERN.test(id)) throw new BadInput(`Invalid node id ${JSON.stringify(id)}: use 1-32 lowercase letters, digits, '-' or '_'`);
  let dir;
  try {
    dir = await stat(data);
  } catch {
    throw new BadInput(`Data directory ${data} does not exist: create it, or pass the right --data`);
  }
  if (!dir.isDirectory()) throw new BadInput(`Data directory ${data} is not a directory`);
  let cluster: ClusterConfig;
  try {
    cluster = await loadClusterConfig(clusterFile);
  } catch (err) {
    throw new BadInput((err as Error).message);
  }
  const me = cluster.nodes.find((n) => n.id === id);
  if (me === undefined) throw new BadInput(`Node ${id} is not listed in cluster file ${clusterFile}: its nodes are ${cluster.nodes.map((n) => n.id).join(", ")}`);
  const listen = typeof values["listen"] === "string" ? values["listen"] : me.address;
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(listen)) throw new BadInput(`Invalid listen address ${JSON.stringify(listen)}: expected host:port`);
  return { id, data, cluster, listen, bugs: plantedBugs(process.env["REPLIVOL_TEST_ONLY_BUGS"]) };
}

/** One line for a person: a parser's code frame after the first line is left out. */
function oneLine(message: string): string {
  const first = message.split("\n", 1)[0] ?? message;
  return first.trim().replace(/:$/, "");
}

async function main(): Promise<void> {
  let flags: Flags;
  try {
    flags = await readFlags(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`volnode: ${oneLine((err as Error).message)}\n`);
    process.exit(err instanceof BadInput ? 2 : 1);
  }
  const logger = createLogger(flags.id);
  const fatal = (err: unknown, what: string): never => {
    logger.fatal({ err }, what);
    process.exit(70);
  };
  process.on("uncaughtException", (err) => fatal(err, "uncaught exception"));
  process.on("unhandledRejection", (err) => fatal(err, "unhandled rejection"));
  const diskFaultControl = process.env["REPLIVOL_TEST_ONLY_DISK_FAULTS"];
  const diskFaults = diskFaultControl === undefined || diskFaultControl === "" ? null : diskFaultsFromControlFile(diskFaultControl);
  let node: VolumeNode;
  try {
    node = await VolumeNode.start({
      nodeId: asNodeId(flags.id),
      listen: flags.listen,
      dataDir: flags.data,
      cluster: flags.cluster,
      logger,
      onInvariantBroken: (err) => fatal(err, "a replica broke an invariant"),
      ...(flags.bugs === null ? {} : { testOnlyPlantedBugs: flags.bugs }),
      ...(diskFaults === null ? {} : { testOnlyDiskFaults: diskFaults }),
    });
  } catch (err) {
    const message = err instanceof VolumeError || err instanceof Error ? err.message : String(err);
    logger.error({ err }, "volnode could not start");
    process.stderr.write(`volnode: ${oneLine(message)}\n`);
    process.exit(1);
  }
  if (flags.bugs !== null) logger.warn({ bugs: flags.bugs }, "bugs planted on purpose (REPLIVOL_TEST_ONLY_BUGS): this node breaks replivol's promises");
  if (diskFaults !== null) logger.warn({ controlFile: diskFaultControl }, "disk faults injected on purpose (REPLIVOL_TEST_ONLY_DISK_FAULTS): writes and syncs fail while the control file says so");
  logger.info({ address: node.listen, pid: process.pid, volumes: node.drivers().length }, "listening");
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "signal received");
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => fatal(err, "clean stop failed"),
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

await main();

import type { Command } from "commander";
import { integerArg, output, sizeArg, UsageError, withCluster } from "../context.js";
import { formatSize } from "../size.js";

interface CreateFlags {
  readonly size?: string;
  readonly replicas?: string;
  readonly nodes?: string;
}

export function register(program: Command): void {
  program
    .command("create")
    .description("Create a volume with one replica on each of N nodes")
    .argument("<name>", "volume name")
    .requiredOption("--size <size>", "size, e.g. 10GiB (KiB, MiB, GiB, TiB; a multiple of 4 KiB)")
    .option("--replicas <n>", "number of replicas, N (default 3)")
    .option("--nodes <ids>", "comma-separated node ids to place the replicas on")
    .action(async (name: string, flags: CreateFlags, cmd: Command) => {
      const sizeBytes = sizeArg(flags.size ?? "", "--size");
      const nodes = flags.nodes?.split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (nodes !== undefined && nodes.length === 0) throw new UsageError("--nodes names no node: give comma-separated ids, e.g. --nodes n1,n2,n3");
      const replicas = flags.replicas === undefined ? undefined : integerArg(flags.replicas, "--replicas", 1, 7);
      await withCluster(cmd, async (cluster, opts) => {
        const info = await cluster.createVolume(name, {
          sizeBytes,
          ...(replicas === undefined ? {} : { replicas }),
          ...(nodes === undefined ? {} : { nodes }),
        });
        output(opts, info, () => `Created volume ${info.name}: ${formatSize(info.sizeBytes)}, replicas on ${info.replicaNodes.join(", ")}.\nTry: volctl info ${info.name}`);
      });
    });
}

import type { Command } from "commander";
import { output, sizeArg, table, UsageError, withCluster } from "../context.js";
import { formatSize } from "../size.js";

export function register(program: Command): void {
  program
    .command("resync-rate")
    .description("Set the resync rate of nodes at run time (bytes/s; 'unlimited' for none), until they restart")
    .argument("<rate>", "bytes per second (KiB, MiB, GiB accepted), or 'unlimited'")
    .option("--nodes <ids>", "comma-separated node ids (default: every node of the cluster file)")
    .action(async (rate: string, flags: { nodes?: string }, cmd: Command) => {
      const bytesPerSec = rate === "unlimited" ? null : sizeArg(rate, "rate");
      if (bytesPerSec === 0) throw new UsageError("A rate of 0 would stop resync for good: give a rate above 0, or 'unlimited'");
      const nodes = flags.nodes?.split(",").map((n) => n.trim()).filter((n) => n !== "");
      await withCluster(cmd, async (cluster, opts) => {
        const set = await cluster.setResyncRate(bytesPerSec, nodes);
        output(opts, set, () =>
          table(
            ["NODE", "RESYNC RATE"],
            set.map((s) => [s.node, s.bytesPerSec === null ? "unlimited" : `${formatSize(s.bytesPerSec)}/s`]),
          ),
        );
      });
    });
}

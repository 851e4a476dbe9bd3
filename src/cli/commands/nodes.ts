import type { Command } from "commander";
import { EXIT, formatDuration, output, table, withCluster } from "../context.js";
import { formatSize } from "../size.js";

export function register(program: Command): void {
  program
    .command("nodes")
    .description("List the nodes of the cluster file, up or down")
    .action(async (_opts: object, cmd: Command) => {
      await withCluster(cmd, async (cluster, opts) => {
        const nodes = await cluster.nodeStatus();
        output(opts, nodes, () =>
          table(
            ["NODE", "ADDRESS", "STATE", "UPTIME", "RSS", "VOLUMES", "RESYNC RATE", "PROBLEM"],
            nodes.map((n) => [n.id, n.address, n.up ? "up" : "down", formatDuration(n.uptimeMs), n.rssBytes === null ? "-" : formatSize(n.rssBytes), n.volumes ?? "-", !n.up ? "-" : n.resyncBytesPerSec === null ? "unlimited" : `${formatSize(n.resyncBytesPerSec)}/s`, n.error ?? ""]),
          ),
        );
        if (nodes.every((n) => !n.up)) process.exitCode = EXIT.unavailable;
      });
    });
}

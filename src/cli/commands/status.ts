import type { Command } from "commander";
import { EXIT, formatDuration, output, table, withCluster } from "../context.js";
import { formatSize } from "../size.js";

export function register(program: Command): void {
  program
    .command("status")
    .description("Show which nodes are up and whether each volume is healthy, degraded or unavailable")
    .action(async (_opts: object, cmd: Command) => {
      await withCluster(cmd, async (cluster, opts) => {
        const nodes = await cluster.nodeStatus();
        const up = nodes.filter((n) => n.up).length;
        const volumes = up === 0 ? [] : await cluster.volumes();
        output(opts, { nodes, volumes }, () => {
          const lines = [
            `Nodes: ${up} of ${nodes.length} up`,
            table(
              ["NODE", "ADDRESS", "STATE", "UPTIME", "VOLUMES"],
              nodes.map((n) => [n.id, n.address, n.up ? "up" : "down", formatDuration(n.uptimeMs), n.volumes ?? "-"]),
            ),
            `Volumes: ${volumes.length} (${volumes.filter((v) => v.health === "healthy").length} healthy)`,
          ];
          if (volumes.length > 0) {
            lines.push(
              table(
                ["VOLUME", "SIZE", "HEALTH", "REPLICAS IN SYNC", "PRIMARY"],
                volumes.map((v) => [v.name, formatSize(v.sizeBytes), v.health, `${v.replicas.filter((r) => r.state === "in-sync").length}/${v.replicaNodes.length}`, v.primary ?? "-"]),
              ),
            );
          }
          if (up < nodes.length) lines.push(`Down: ${nodes.filter((n) => !n.up).map((n) => n.id).join(", ")}. Start them; their replicas resync by themselves.`);
          return lines.join("\n");
        });
        if (up === 0) process.exitCode = EXIT.unavailable;
      });
    });
}

import type { Command } from "commander";
import { output, table, withCluster } from "../context.js";
import { formatSize } from "../size.js";

export function register(program: Command): void {
  program
    .command("ls")
    .description("List volumes with their size, health and primary")
    .action(async (_opts: object, cmd: Command) => {
      await withCluster(cmd, async (cluster, opts) => {
        const volumes = await cluster.volumes();
        output(opts, volumes, () =>
          volumes.length === 0
            ? "No volumes. Create one with: volctl create NAME --size 1GiB"
            : table(
                ["VOLUME", "SIZE", "REPLICAS", "HEALTH", "EPOCH", "PRIMARY"],
                volumes.map((v) => [v.name, formatSize(v.sizeBytes), v.replicaNodes.join(","), v.health, v.epoch, v.primary ?? "-"]),
              ),
        );
      });
    });
}

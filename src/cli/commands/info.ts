import type { Command } from "commander";
import { output, table, withCluster } from "../context.js";
import { formatSize } from "../size.js";

export function register(program: Command): void {
  program
    .command("info")
    .description("Show a volume's replicas: state, head, lag, epoch, primary and lease holder")
    .argument("<name>", "volume name")
    .action(async (name: string, _opts: object, cmd: Command) => {
      await withCluster(cmd, async (cluster, opts) => {
        const v = await cluster.volumeInfo(name);
        output(opts, v, () =>
          [
            `Volume ${v.name}: ${formatSize(v.sizeBytes)} (${v.blockCount} blocks of ${v.blockSize} bytes), ${v.health}`,
            `Epoch ${v.epoch}, primary ${v.primary ?? "none"}, lease holder ${v.leaseHolder ?? "none"}, write quorum ${v.writeQuorum} of ${v.replicaNodes.length}`,
            table(
              ["NODE", "STATE", "HEAD", "COMMIT", "LAG", "PROMISED", "ROLE"],
              v.replicas.map((r) => [
                r.node,
                r.state,
                r.head === null ? "-" : `${r.head.epoch}:${r.head.lsn}`,
                r.commitLsn ?? "-",
                r.lagRecords ?? "-",
                r.promisedEpoch ?? "-",
                r.primary ? "primary" : "replica",
              ]),
            ),
          ].join("\n"),
        );
      });
    });
}

import type { Command } from "commander";
import { output, table, withCluster } from "../context.js";
import type { ReplicaInfo, VolumeInfo } from "../../client/index.js";
import { formatSize } from "../size.js";

/** Progress, rate and ETA of a resync under way, or what the last one moved. */
export function resyncText(r: ReplicaInfo): string {
  const x = r.resync;
  if (x !== null) {
    if (x.regionsLeft === null) return "comparing region versions";
    const total = x.regionsCopied + x.regionsLeft;
    const pct = total === 0 ? 100 : Math.floor((100 * x.regionsCopied) / total);
    const eta = x.etaMs === null ? "" : `, ETA ${Math.ceil(x.etaMs / 1000)} s`;
    return `${pct}% (${x.regionsCopied}/${total} regions, ${formatSize(x.bytesCopied)}) at ${formatSize(x.rate)}/s${eta}`;
  }
  if (r.lastResync !== null) return `last: ${r.lastResync.regions} regions, ${formatSize(r.lastResync.bytes)} in ${(r.lastResync.ms / 1000).toFixed(1)} s`;
  return "-";
}

function replicaSetText(v: VolumeInfo): string {
  const c = v.config;
  if (c.learner !== null) return `${c.replicas.join(", ")}; replacing ${c.learner.from} by ${c.learner.to}, which is catching up (not voting yet)`;
  if (c.previousReplicas.length > 0) return `${c.replicas.join(", ")}, joint with the old set ${c.previousReplicas.join(", ")} (writes need a majority of each)`;
  return c.replicas.join(", ");
}

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
            `Epoch ${v.epoch}, primary ${v.primary ?? "none"}, lease holder ${v.leaseHolder ?? "none"}, write quorum ${v.writeQuorum} of ${v.config.replicas.length}`,
            `Replica set ${v.config.version}: ${replicaSetText(v)}`,
            table(
              ["NODE", "STATE", "HEAD", "COMMIT", "LAG", "PROMISED", "ROLE", "RESYNC"],
              v.replicas.map((r) => [
                r.node,
                r.state,
                r.head === null ? "-" : `${r.head.epoch}:${r.head.lsn}`,
                r.commitLsn ?? "-",
                r.lagRecords ?? "-",
                r.promisedEpoch ?? "-",
                r.primary ? "primary" : "replica",
                resyncText(r),
              ]),
            ),
          ].join("\n"),
        );
      });
    });
}

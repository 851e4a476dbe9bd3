import type { Command } from "commander";
import type { ReplicaInfo, VolumeInfo } from "../../client/index.js";
import { integerArg, output, withCluster } from "../context.js";
import { formatSize } from "../size.js";
import { watchVolume } from "../watch.js";
import { resyncText } from "./info.js";


function resyncing(v: VolumeInfo): ReplicaInfo[] {
  return v.replicas.filter((r) => r.resync !== null || r.state === "resyncing" || r.state === "behind");
}

function summary(v: VolumeInfo): string {
  const busy = resyncing(v);
  if (busy.length === 0) return `Volume ${v.name}: every replica is in sync`;
  const lines = [`Volume ${v.name}:`, ...busy.map((r) => `  ${r.node}: ${r.state}, ${resyncText(r)}`)];
  // Catch-up and resync are driven by the primary of a mount; with none, the nodes mount the volume themselves (idle sync).
  if (v.primary === null) lines.push("  no mount is active: the nodes mount the volume themselves within seconds to bring these replicas back");
  return lines.join("\n");
}

export function register(program: Command): void {
  program
    .command("resync")
    .description("Show the resyncs of a volume's replicas (they start by themselves); --watch draws progress until they are done")
    .argument("<name>", "volume name")
    .option("--watch", "poll and draw a progress bar per resyncing replica until every replica is in sync")
    .option("--timeout <seconds>", "give up watching after this long (exit 4)", "3600")
    .action(async (name: string, flags: { watch?: boolean; timeout: string }, cmd: Command) => {
      const timeoutMs = integerArg(flags.timeout, "--timeout", 1, 7 * 24 * 3600) * 1000;
      await withCluster(cmd, async (cluster, opts) => {
        let v = await cluster.volumeInfo(name);
        if (flags.watch !== true) {
          output(opts, v.replicas.map((r) => ({ node: r.node, state: r.state, resync: r.resync, lastResync: r.lastResync })), () => summary(v));
          return;
        }
        v = await watchVolume(cluster, name, v, {
          timeoutMs,
          json: opts.json === true,
          format: " {node} [{bar}] {percentage}% {regions} {bytes} {rate} {eta}",
          done: (x) => resyncing(x).length === 0,
          text: summary,
          bars: (x) =>
            x.replicas.flatMap((r) => {
              const p = r.resync;
              if (p === null) return [];
              const total = p.regionsLeft === null ? 0 : p.regionsCopied + p.regionsLeft;
              const payload = {
                node: r.node,
                regions: total === 0 ? "comparing" : `${p.regionsCopied}/${total} regions`,
                bytes: formatSize(p.bytesCopied),
                rate: `${formatSize(p.rate)}/s`,
                eta: p.etaMs === null ? "" : `ETA ${Math.ceil(p.etaMs / 1000)} s`,
              };
              return [{ key: r.node, value: p.regionsCopied, total, payload }];
            }),
        });
        output(opts, v.replicas.map((r) => ({ node: r.node, state: r.state, lastResync: r.lastResync })), () => summary(v));
      });
    });
}

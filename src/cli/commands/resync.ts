import { MultiBar, Presets } from "cli-progress";
import type { Command } from "commander";
import { setTimeout as sleep } from "node:timers/promises";
import type { ReplicaInfo, VolumeInfo } from "../../client/index.js";
import { integerArg, output, withCluster } from "../context.js";
import { formatSize } from "../size.js";
import { resyncText } from "./info.js";

const POLL_MS = 500;

function resyncing(v: VolumeInfo): ReplicaInfo[] {
  return v.replicas.filter((r) => r.resync !== null || r.state === "resyncing" || r.state === "behind");
}

function summary(v: VolumeInfo): string {
  const busy = resyncing(v);
  if (busy.length === 0) return `Volume ${v.name}: every replica is in sync`;
  const lines = [`Volume ${v.name}:`, ...busy.map((r) => `  ${r.node}: ${r.state}, ${resyncText(r)}`)];
  // Catch-up and resync are driven by the primary of a mount.
  if (v.primary === null) lines.push("  no mount is active: these replicas catch up when the volume is next mounted");
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
        const tty = process.stderr.isTTY && opts.json !== true;
        const bars = tty ? new MultiBar({ format: " {node} [{bar}] {percentage}% {regions} {bytes} {rate} {eta}", hideCursor: true, clearOnComplete: false }, Presets.shades_classic) : null;
        const barOf = new Map<string, ReturnType<MultiBar["create"]>>();
        let lastLine = "";
        const until = Date.now() + timeoutMs;
        try {
          for (;;) {
            for (const r of v.replicas) {
              const x = r.resync;
              if (x === null) continue;
              const total = x.regionsLeft === null ? 0 : x.regionsCopied + x.regionsLeft;
              const payload = {
                node: r.node,
                regions: total === 0 ? "comparing" : `${x.regionsCopied}/${total} regions`,
                bytes: formatSize(x.bytesCopied),
                rate: `${formatSize(x.rate)}/s`,
                eta: x.etaMs === null ? "" : `ETA ${Math.ceil(x.etaMs / 1000)} s`,
              };
              if (bars !== null) {
                const bar = barOf.get(r.node) ?? bars.create(Math.max(1, total), 0, payload);
                barOf.set(r.node, bar);
                bar.setTotal(Math.max(1, total));
                bar.update(x.regionsCopied, payload);
              }
            }
            if (bars === null) {
              const line = summary(v);
              if (line !== lastLine && opts.json !== true) process.stderr.write(`${line}\n`);
              lastLine = line;
            }
            if (resyncing(v).length === 0) break;
            if (Date.now() >= until) {
              process.exitCode = 4;
              break;
            }
            await sleep(POLL_MS);
            v = await cluster.volumeInfo(name);
          }
        } finally {
          bars?.stop();
        }
        output(opts, v.replicas.map((r) => ({ node: r.node, state: r.state, lastResync: r.lastResync })), () => summary(v));
      });
    });
}

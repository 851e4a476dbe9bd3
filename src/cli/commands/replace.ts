import { Presets, SingleBar } from "cli-progress";
import type { Command } from "commander";
import type { ReplaceProgress, VolumeInfo } from "../../client/index.js";
import { integerArg, output, withCluster } from "../context.js";
import { formatSize } from "../size.js";

function phaseText(p: ReplaceProgress, from: string, to: string): string {
  switch (p.phase) {
    case "starting":
      return `${to}: empty replica created; asking the primary to take it on`;
    case "learner": {
      const r = p.resync;
      if (r === null) return `${to}: catching up as a learner (not voting yet)`;
      const total = r.regionsLeft === null ? null : r.regionsCopied + r.regionsLeft;
      return `${to}: region resync from empty, ${total === null ? "comparing" : `${r.regionsCopied}/${total} regions`}, ${formatSize(r.bytesCopied)} at ${formatSize(r.rate)}/s`;
    }
    case "joint":
      return `${to} in sync: joint configuration (writes need a majority of the old set and of the new one)`;
    case "removing":
      return `new set committed: ${from} leaves`;
    case "done":
      return `done: ${to} replaced ${from}`;
  }
}

function summary(v: VolumeInfo): string {
  return `Volume ${v.name}: replicas on ${v.config.replicas.join(", ")} (configuration ${v.config.version}), ${v.health}`;
}

export function register(program: Command): void {
  program
    .command("replace")
    .description("Replace a volume's replica on one node by a new one on another, built from empty while the volume stays in service; the old replica is deleted at the end")
    .argument("<name>", "volume name")
    .requiredOption("--from <node>", "node whose replica goes")
    .requiredOption("--to <node>", "node that gets the new replica (it must hold none of this volume)")
    .option("--timeout <seconds>", "give up waiting after this long (exit 4); run the same command again to go on", "86400")
    .action(async (name: string, flags: { from: string; to: string; timeout: string }, cmd: Command) => {
      const timeoutMs = integerArg(flags.timeout, "--timeout", 1, 7 * 24 * 3600) * 1000;
      await withCluster(cmd, async (cluster, opts) => {
        const tty = process.stderr.isTTY && opts.json !== true;
        const bar = tty ? new SingleBar({ format: ` ${flags.to} [{bar}] {percentage}% {regions} {bytes} {rate}`, hideCursor: true }, Presets.shades_classic) : null;
        let barStarted = false;
        let lastLine = "";
        try {
          const v = await cluster.replaceReplica(name, flags.from, flags.to, {
            timeoutMs,
            onProgress: (p) => {
              const r = p.resync;
              if (bar !== null && r !== null && r.regionsLeft !== null) {
                const total = Math.max(1, r.regionsCopied + r.regionsLeft);
                const payload = { regions: `${r.regionsCopied}/${total} regions`, bytes: formatSize(r.bytesCopied), rate: `${formatSize(r.rate)}/s` };
                if (!barStarted) bar.start(total, r.regionsCopied, payload);
                barStarted = true;
                bar.setTotal(total);
                bar.update(r.regionsCopied, payload);
                return;
              }
              const line = phaseText(p, flags.from, flags.to);
              if (opts.json === true || line === lastLine) return;
              lastLine = line;
              if (barStarted) {
                bar?.stop();
                barStarted = false;
              }
              process.stderr.write(`${line}\n`);
            },
          });
          if (barStarted) bar?.stop();
          output(opts, { name: v.name, config: v.config, health: v.health, replicas: v.replicas.map((r) => ({ node: r.node, state: r.state })) }, () => summary(v));
        } finally {
          if (barStarted) bar?.stop();
        }
      });
    });
}

import { MultiBar, Presets } from "cli-progress";
import type { Command } from "commander";
import { setTimeout as sleep } from "node:timers/promises";
import type { VolumeInfo } from "../../client/index.js";
import { integerArg, output, table, withCluster } from "../context.js";

const POLL_MS = 500;

function rows(v: VolumeInfo): { node: string; state: string; scrubbing: boolean; regionsDone: number; regionsTotal: number; corruptFound: number | null; repairsDone: number | null; repairsFailed: number | null }[] {
  return v.replicas.map((r) => ({
    node: r.node,
    state: r.state,
    scrubbing: r.scrub?.active ?? false,
    regionsDone: r.scrub?.regionsDone ?? 0,
    regionsTotal: r.scrub?.regionsTotal ?? 0,
    corruptFound: r.corruptFound,
    repairsDone: r.repairsDone,
    repairsFailed: r.repairsFailed,
  }));
}

function summary(v: VolumeInfo): string {
  return table(
    ["NODE", "STATE", "SCRUB", "CORRUPT FOUND", "REPAIRED", "NO GOOD COPY"],
    rows(v).map((r) => [
      r.node,
      r.state,
      r.scrubbing ? `${r.regionsDone}/${r.regionsTotal} regions` : "done",
      r.corruptFound ?? "-",
      r.repairsDone ?? "-",
      r.repairsFailed ?? "-",
    ]),
  );
}

export function register(program: Command): void {
  program
    .command("scrub")
    .description("Verify every block's checksum on every replica now; corrupt blocks are repaired from a good copy by the primary of a mount")
    .argument("<name>", "volume name")
    .option("--watch", "draw progress until every replica's pass is done")
    .option("--timeout <seconds>", "give up watching after this long (exit 4)", "3600")
    .action(async (name: string, flags: { watch?: boolean; timeout: string }, cmd: Command) => {
      const timeoutMs = integerArg(flags.timeout, "--timeout", 1, 7 * 24 * 3600) * 1000;
      await withCluster(cmd, async (cluster, opts) => {
        const started = await cluster.scrub(name);
        let v = await cluster.volumeInfo(name);
        if (flags.watch === true) {
          const tty = process.stderr.isTTY && opts.json !== true;
          const bars = tty ? new MultiBar({ format: " {node} [{bar}] {value}/{total} regions", hideCursor: true }, Presets.shades_classic) : null;
          const barOf = new Map<string, ReturnType<MultiBar["create"]>>();
          const until = Date.now() + timeoutMs;
          try {
            while (v.replicas.some((r) => r.scrub?.active === true)) {
              for (const r of v.replicas) {
                if (bars === null || r.scrub === null) continue;
                const bar = barOf.get(r.node) ?? bars.create(Math.max(1, r.scrub.regionsTotal), 0, { node: r.node });
                barOf.set(r.node, bar);
                bar.update(r.scrub.active ? r.scrub.regionsDone : r.scrub.regionsTotal);
              }
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
        }
        output(opts, { volume: name, started, replicas: rows(v) }, () => `Scrub of ${name} ${flags.watch === true ? "done" : "started"} on ${started.join(", ")}\n${summary(v)}`);
      });
    });
}

import type { Command } from "commander";
import type { VolumeInfo } from "../../client/index.js";
import { integerArg, output, table, withCluster } from "../context.js";
import { watchVolume } from "../watch.js";


function rows(v: VolumeInfo): {
  node: string;
  state: string;
  scrubbing: boolean;
  regionsDone: number;
  regionsTotal: number;
  corruptFound: number | null;
  divergentFound: number | null;
  repairsDone: number | null;
  repairsFailed: number | null;
}[] {
  return v.replicas.map((r) => ({
    node: r.node,
    state: r.state,
    scrubbing: r.scrub?.active ?? false,
    regionsDone: r.scrub?.regionsDone ?? 0,
    regionsTotal: r.scrub?.regionsTotal ?? 0,
    corruptFound: r.corruptFound,
    divergentFound: r.divergentFound,
    repairsDone: r.repairsDone,
    repairsFailed: r.repairsFailed,
  }));
}

function summary(v: VolumeInfo): string {
  return table(
    ["NODE", "STATE", "SCRUB", "CORRUPT FOUND", "DIVERGENT REGIONS", "REPAIRED", "NO GOOD COPY"],
    rows(v).map((r) => [
      r.node,
      r.state,
      r.scrubbing ? `${r.regionsDone}/${r.regionsTotal} regions` : "done",
      r.corruptFound ?? "-",
      r.divergentFound ?? "-",
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
          v = await watchVolume(cluster, name, v, {
            timeoutMs,
            json: opts.json === true,
            format: " {node} [{bar}] {value}/{total} regions",
            done: (x) => !x.replicas.some((r) => r.scrub?.active === true),
            text: summary,
            bars: (x) =>
              x.replicas.flatMap((r) =>
                r.scrub === null ? [] : [{ key: r.node, value: r.scrub.active ? r.scrub.regionsDone : r.scrub.regionsTotal, total: r.scrub.regionsTotal, payload: { node: r.node } }],
              ),
          });
        }
        output(opts, { volume: name, started, replicas: rows(v) }, () => `Scrub of ${name} ${flags.watch === true ? "done" : "started"} on ${started.join(", ")}\n${summary(v)}`);
      });
    });
}

import type { Command } from "commander";
import { output, withCluster } from "../context.js";

export function register(program: Command): void {
  program
    .command("fence")
    .description("Take a volume over and release it: the client mounting it now fails with FENCED on its next I/O")
    .argument("<name>", "volume name")
    .action(async (name: string, _opts: object, cmd: Command) => {
      await withCluster(cmd, async (cluster, opts) => {
        const volume = await cluster.mount(name, { mode: "rw", takeover: true });
        const { epoch, primary } = volume;
        await volume.close();
        output(opts, { volume: name, epoch, primary }, () => `Fenced ${name}: epoch ${epoch} (through ${primary}) took it over and released it; any earlier mount now fails with FENCED.`);
      });
    });
}

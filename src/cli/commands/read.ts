import type { Command } from "commander";
import { sizeArg, withCluster } from "../context.js";

export function register(program: Command): void {
  program
    .command("read")
    .description("Read bytes of a volume to stdout (raw; base64 in a JSON object with --json)")
    .argument("<name>", "volume name")
    .requiredOption("--offset <bytes>", "byte offset (KiB, MiB, GiB, TiB accepted)")
    .requiredOption("--length <bytes>", "bytes to read (KiB, MiB, GiB, TiB accepted)")
    .action(async (name: string, flags: { offset?: string; length?: string }, cmd: Command) => {
      const offset = sizeArg(flags.offset ?? "", "--offset");
      const length = sizeArg(flags.length ?? "", "--length");
      await withCluster(cmd, async (cluster, opts) => {
        // A read-write mount without takeover: it fails with VOLUME_BUSY rather
        // than disturb a live mount (the nodes do not serve read-only mounts yet).
        const volume = await cluster.mount(name, { mode: "rw" });
        let data: Uint8Array;
        try {
          data = await volume.read(offset, length);
        } finally {
          await volume.close();
        }
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify({ volume: name, offset, length: data.length, data: Buffer.from(data).toString("base64") })}\n`);
        } else {
          await new Promise<void>((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
        }
      });
    });
}

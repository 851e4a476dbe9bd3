import type { Command } from "commander";
import { sizeArg, withCluster } from "../context.js";

export function register(program: Command): void {
  program
    .command("read")
    .description("Read bytes of a volume to stdout (raw; base64 in a JSON object with --json)")
    .argument("<name>", "volume name")
    .requiredOption("--offset <bytes>", "byte offset (KiB, MiB, GiB, TiB accepted)")
    .requiredOption("--length <bytes>", "bytes to read (KiB, MiB, GiB, TiB accepted)")
    .option("--rw", "read through a read-write mount: linearizable, but fails with VOLUME_BUSY while another client has the volume mounted")
    .action(async (name: string, flags: { offset?: string; length?: string; rw?: boolean }, cmd: Command) => {
      const offset = sizeArg(flags.offset ?? "", "--offset");
      const length = sizeArg(flags.length ?? "", "--length");
      await withCluster(cmd, async (cluster, opts) => {
        // Read-only by default: committed data of one in-sync replica, which
        // disturbs no live mount (it may be stale by staleMs). --rw mounts
        // read-write without takeover: linearizable, VOLUME_BUSY if in use.
        const volume = await cluster.mount(name, { mode: flags.rw === true ? "rw" : "ro" });
        let data: Uint8Array;
        let staleMs: number;
        try {
          data = await volume.read(offset, length);
          staleMs = volume.staleMs;
        } finally {
          await volume.close();
        }
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify({ volume: name, offset, length: data.length, staleMs, data: Buffer.from(data).toString("base64") })}\n`);
        } else {
          await new Promise<void>((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
        }
      });
    });
}

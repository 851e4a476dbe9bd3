import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { output, sizeArg, UsageError, withCluster } from "../context.js";

async function readAll(source: string): Promise<Uint8Array> {
  if (source !== "-") {
    try {
      return await readFile(source);
    } catch (e) {
      throw new UsageError(`Cannot read ${source}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function register(program: Command): void {
  program
    .command("write")
    .description("Write a file (or stdin) into a volume at a byte offset")
    .argument("<name>", "volume name")
    .argument("[file]", "file to write, or - for stdin", "-")
    .requiredOption("--offset <bytes>", "byte offset (KiB, MiB, GiB, TiB accepted)")
    .option("--force", "take the volume over if another client holds it (fences that client)")
    .action(async (name: string, file: string, flags: { offset?: string; force?: boolean }, cmd: Command) => {
      const offset = sizeArg(flags.offset ?? "", "--offset");
      const data = await readAll(file);
      await withCluster(cmd, async (cluster, opts) => {
        const volume = await cluster.mount(name, { mode: "rw", takeover: flags.force === true });
        try {
          await volume.write(offset, data);
          await volume.flush();
        } finally {
          await volume.close();
        }
        output(opts, { volume: name, offset, bytes: data.length, epoch: volume.epoch }, () => `Wrote ${data.length} bytes to ${name} at offset ${offset}.`);
      });
    });
}

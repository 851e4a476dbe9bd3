import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { output, UsageError, withCluster } from "../context.js";

async function confirmed(name: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`This deletes every replica of ${name} and its data. Type the volume name to confirm: `);
    return answer.trim() === name;
  } finally {
    rl.close();
  }
}

export function register(program: Command): void {
  program
    .command("rm")
    .description("Remove a volume and every replica's data")
    .argument("<name>", "volume name")
    .option("--yes", "do not ask for confirmation")
    .action(async (name: string, flags: { yes?: boolean }, cmd: Command) => {
      if (flags.yes !== true && !(await confirmed(name))) {
        throw new UsageError(`Not removing ${name}: removing deletes its data on every replica; pass --yes to confirm`);
      }
      await withCluster(cmd, async (cluster, opts) => {
        await cluster.deleteVolume(name);
        output(opts, { removed: name }, () => `Removed volume ${name}.`);
      });
    });
}

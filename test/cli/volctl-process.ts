/** Runs volctl as a child process (through tsx), with a deadline. */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VOLCTL = path.join(ROOT, "src/cli/volctl.ts");

export interface Run {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export function volctl(args: readonly string[], options: { env?: Record<string, string>; input?: Buffer } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", VOLCTL, ...args],
      { cwd: ROOT, encoding: "buffer", timeout: 30_000, env: { ...process.env, REPLIVOL_CLUSTER: "", ...options.env } },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== "number") {
          reject(new Error(`volctl ${args.join(" ")} did not finish: ${err.message}`));
          return;
        }
        resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr: stderr.toString("utf8") });
      },
    );
    child.stdin?.end(options.input ?? Buffer.alloc(0));
  });
}

export function json(r: Run): unknown {
  return JSON.parse(r.stdout.toString("utf8"));
}

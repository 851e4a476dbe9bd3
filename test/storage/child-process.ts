/** Child processes for tests: started with tsx, read line by line, always ended by the test. */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export interface TestChild {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Lines printed so far. */
  readonly lines: string[];
  /** Resolves with the first line matching, or rejects after timeoutMs or when the child exits first. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** Resolves when the child exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL unless it already exited; waits for the exit. */
  kill(): Promise<void>;
}

export function startTsxChild(script: string, args: readonly string[], onLine?: (line: string) => void): TestChild {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, script), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`Cannot start ${script}`);
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let exitedNow = false;
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => {
      exitedNow = true;
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  let partial = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    partial += chunk;
    let nl = partial.indexOf("\n");
    while (nl >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      onLine?.(line);
      for (const w of waiters) w();
      nl = partial.indexOf("\n");
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const pid = child.pid;
  return {
    process: child,
    pid,
    lines,
    exited,
    waitForLine(match, timeoutMs) {
      return new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found !== undefined) done(() => resolve(found));
          else if (exitedNow) done(() => reject(new Error(`${script} exited before printing the line; stderr: ${stderr}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${script} printed no such line in ${timeoutMs} ms; stderr: ${stderr}`))), timeoutMs);
        const done = (settle: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async kill() {
      if (!exitedNow) child.kill("SIGKILL");
      await exited;
    },
  };
}

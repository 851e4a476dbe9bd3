/**
 * What every volctl verb shares: the cluster it talks to, output for people
 * (tables) or scripts (`--json`), and the exit code each failure maps to.
 */
import type { Command } from "commander";
import Table from "cli-table3";
import { connect, VolumeError, type Cluster, type ErrorCode } from "../client/index.js";
import { parseSize } from "./size.js";

/** Exit codes: scripts tell these apart. */
export const EXIT = {
  ok: 0,
  other: 1,
  usage: 2,
  notFound: 3,
  unavailable: 4,
  busy: 5,
} as const;

/** Bad flags or arguments: exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface GlobalOptions {
  readonly cluster?: string;
  readonly json?: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function exitCodeOfError(code: ErrorCode): number {
  switch (code) {
    case "INVALID_ARGUMENT":
    case "OUT_OF_RANGE":
      return EXIT.usage;
    case "NOT_FOUND":
      return EXIT.notFound;
    case "NO_QUORUM":
      return EXIT.unavailable;
    case "VOLUME_BUSY":
    case "FENCED":
    case "STALE_EPOCH":
      return EXIT.busy;
    case "CORRUPT":
    case "DISK_FAILED":
      return EXIT.other;
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof VolumeError) return exitCodeOfError(err.code);
  return EXIT.other;
}

/** What to do next, by error code. */
function hintOf(code: ErrorCode): string | null {
  switch (code) {
    case "NO_QUORUM":
      return "Check which nodes are down with 'volctl status', start them, then try again.";
    case "VOLUME_BUSY":
      return "Another client holds the volume. 'volctl fence NAME' takes it over (its writer then fails with FENCED).";
    case "FENCED":
    case "STALE_EPOCH":
      return "Another client took the volume over; mount it again if you mean to take it back.";
    case "NOT_FOUND":
      return "List volumes with 'volctl ls' and nodes with 'volctl nodes'.";
    case "INVALID_ARGUMENT":
    case "OUT_OF_RANGE":
    case "CORRUPT":
    case "DISK_FAILED":
      return null;
  }
}

/** Prints a failure: text with a hint for people, one JSON object on stderr with `--json`. */
export function reportError(err: unknown, json: boolean): void {
  const code = err instanceof VolumeError ? err.code : err instanceof UsageError ? "USAGE" : "ERROR";
  const message = err instanceof Error ? err.message : String(err);
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: { code, message, exitCode: exitCodeOf(err) } })}\n`);
    return;
  }
  const hint = err instanceof VolumeError ? hintOf(err.code) : null;
  process.stderr.write(`volctl: ${message}\n${hint === null ? "" : `${hint}\n`}`);
}

/** The cluster file from --cluster or REPLIVOL_CLUSTER. */
export function clusterFile(opts: GlobalOptions): string {
  const file = opts.cluster ?? process.env["REPLIVOL_CLUSTER"];
  if (file === undefined || file === "") {
    throw new UsageError("No cluster file: pass --cluster FILE or set REPLIVOL_CLUSTER (npm start prints one)");
  }
  return file;
}

/** Runs `fn` with a connected cluster, closing it whatever happens. */
export async function withCluster<T>(cmd: Command, fn: (cluster: Cluster, opts: GlobalOptions) => Promise<T>): Promise<T> {
  const opts = globalOptions(cmd);
  const file = clusterFile(opts);
  let cluster: Cluster;
  try {
    cluster = await connect({ cluster: file });
  } catch (e) {
    // A missing or malformed cluster file is a usage error, not a missing volume.
    throw new UsageError(`${e instanceof Error ? e.message : String(e)}: pass the right --cluster FILE or REPLIVOL_CLUSTER`, { cause: e });
  }
  try {
    return await fn(cluster, opts);
  } finally {
    await cluster.close();
  }
}

/** Prints `value` as JSON with `--json`, else what `human` renders. */
export function output(opts: GlobalOptions, value: unknown, human: () => string): void {
  if (opts.json === true) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(`${human()}\n`);
}

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [], compact: true } });
  for (const r of rows) t.push(r);
  return t.toString();
}

export function sizeArg(text: string, what: string): number {
  const bytes = parseSize(text);
  if (bytes === null) throw new UsageError(`Bad ${what} ${JSON.stringify(text)}: use a number of bytes, or KiB, MiB, GiB or TiB (e.g. 10GiB)`);
  return bytes;
}

export function integerArg(text: string, what: string, min: number, max: number): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`Bad ${what} ${JSON.stringify(text)}: a whole number from ${min} to ${max}`);
  return n;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

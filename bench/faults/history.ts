/**
 * The recorded history of a fault-injection run: every operation with its
 * invoke and complete times and its outcome, and every fault the runner
 * injected, one JSON object per line (JSONL), appended by several processes.
 *
 * Times are bigint nanoseconds of process.hrtime.bigint() (CLOCK_MONOTONIC,
 * one clock for every process on one Linux machine), written as decimal
 * strings because JSON numbers lose precision past 2^53.
 *
 * Outcomes: "ok" (acknowledged), "failed" (known not to have happened: the
 * checker treats a read of its value as a violation), "unknown" (may or may
 * not have happened, now or later).
 */
import type { BlockValue, Decoded } from "./value.js";

export type Outcome = "ok" | "failed" | "unknown";

export type HistoryEvent =
  | { type: "write"; process: string; block: number; value: BlockValue; invokeNs: bigint; completeNs: bigint; outcome: Outcome; error?: string; mountEpoch: number }
  | { type: "read"; process: string; block: number; invokeNs: bigint; completeNs: bigint; outcome: Outcome; read?: Decoded; error?: string; mountEpoch: number }
  /**
   * A mount by a client process. Record the client library's own failovers
   * (the Volume's "failover" event) as mounts too, with takeover false and
   * the new epoch: the checker then knows that the process's writes resent
   * after it carry the newer epoch (see checker.ts, fencing).
   */
  | { type: "mount"; process: string; invokeNs: bigint; completeNs: bigint; outcome: Outcome; epoch?: number; takeover: boolean; error?: string }
  | { type: "fault"; name: string; detail?: string; atNs: bigint; endNs?: bigint };

/** One JSON line, no newline. */
export function serializeEvent(e: HistoryEvent): string {
  return JSON.stringify(e, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
}

class LineError extends Error {}

function fail(why: string): never {
  throw new LineError(why);
}

function field(o: Record<string, unknown>, name: string): unknown {
  return o[name];
}

function str(o: Record<string, unknown>, name: string): string {
  const v = field(o, name);
  if (typeof v !== "string") fail(`${name} must be a string`);
  return v;
}

function optStr(o: Record<string, unknown>, name: string): string | undefined {
  const v = field(o, name);
  if (v === undefined) return undefined;
  if (typeof v !== "string") fail(`${name} must be a string`);
  return v;
}

function int(o: Record<string, unknown>, name: string): number {
  const v = field(o, name);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(`${name} must be a non-negative integer`);
  return v;
}

function ns(o: Record<string, unknown>, name: string): bigint {
  const v = field(o, name);
  if (typeof v !== "string" || !/^-?\d+$/.test(v)) fail(`${name} must be a decimal string of nanoseconds`);
  return BigInt(v);
}

function outcome(o: Record<string, unknown>): Outcome {
  const v = field(o, "outcome");
  if (v !== "ok" && v !== "failed" && v !== "unknown") fail(`outcome must be "ok", "failed" or "unknown"`);
  return v;
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`${what} must be an object`);
  return v as Record<string, unknown>;
}

function blockValue(v: unknown, what: string): BlockValue {
  const o = object(v, what);
  return { block: int(o, "block"), writer: str(o, "writer"), seq: int(o, "seq"), epoch: int(o, "epoch") };
}

function decoded(v: unknown): Decoded {
  const o = object(v, "read");
  switch (o.kind) {
    case "zero":
      return { kind: "zero" };
    case "value":
      return { kind: "value", value: blockValue(o.value, "read.value") };
    case "undecodable":
      return { kind: "undecodable", reason: str(o, "reason") };
    default:
      return fail(`read.kind must be "zero", "value" or "undecodable"`);
  }
}

function interval(o: Record<string, unknown>): { invokeNs: bigint; completeNs: bigint } {
  const invokeNs = ns(o, "invokeNs");
  const completeNs = ns(o, "completeNs");
  if (completeNs < invokeNs) fail(`completeNs ${completeNs} is before invokeNs ${invokeNs}`);
  return { invokeNs, completeNs };
}

function parseEvent(o: Record<string, unknown>): HistoryEvent {
  switch (o.type) {
    case "write": {
      const { invokeNs, completeNs } = interval(o);
      const e: HistoryEvent = { type: "write", process: str(o, "process"), block: int(o, "block"), value: blockValue(o.value, "value"), invokeNs, completeNs, outcome: outcome(o), mountEpoch: int(o, "mountEpoch") };
      if (e.value.block !== e.block) fail(`value.block ${e.value.block} is not block ${e.block}`);
      const error = optStr(o, "error");
      if (error !== undefined) e.error = error;
      return e;
    }
    case "read": {
      const { invokeNs, completeNs } = interval(o);
      const e: HistoryEvent = { type: "read", process: str(o, "process"), block: int(o, "block"), invokeNs, completeNs, outcome: outcome(o), mountEpoch: int(o, "mountEpoch") };
      if (o.read !== undefined) e.read = decoded(o.read);
      if (e.outcome === "ok" && e.read === undefined) fail("a read with outcome ok needs read");
      const error = optStr(o, "error");
      if (error !== undefined) e.error = error;
      return e;
    }
    case "mount": {
      const { invokeNs, completeNs } = interval(o);
      if (typeof o.takeover !== "boolean") fail("takeover must be a boolean");
      const e: HistoryEvent = { type: "mount", process: str(o, "process"), invokeNs, completeNs, outcome: outcome(o), takeover: o.takeover };
      if (o.epoch !== undefined) e.epoch = int(o, "epoch");
      if (e.outcome === "ok" && e.epoch === undefined) fail("a mount with outcome ok needs epoch");
      const error = optStr(o, "error");
      if (error !== undefined) e.error = error;
      return e;
    }
    case "fault": {
      const e: HistoryEvent = { type: "fault", name: str(o, "name"), atNs: ns(o, "atNs") };
      const detail = optStr(o, "detail");
      if (detail !== undefined) e.detail = detail;
      if (o.endNs !== undefined) {
        e.endNs = ns(o, "endNs");
        if (e.endNs < e.atNs) fail(`endNs ${e.endNs} is before atNs ${e.atNs}`);
      }
      return e;
    }
    default:
      return fail(`type must be "write", "read", "mount" or "fault"`);
  }
}

/** Parses a JSONL history; blank lines are skipped. Throws naming the first bad line. */
export function parseHistory(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      // A process killed mid-append leaves a torn last line: say so, the
      // caller decides whether a run whose history ends torn still counts.
      throw new Error(`Cannot parse history line ${i + 1}: not JSON (${(err as Error).message})`, { cause: err });
    }
    try {
      events.push(parseEvent(object(json, "an event")));
    } catch (err) {
      if (err instanceof LineError) throw new Error(`Cannot parse history line ${i + 1}: ${err.message}`, { cause: err });
      throw err;
    }
  }
  return events;
}

/** Error codes that a replivol node or client returns only when nothing was written. */
const NOTHING_WRITTEN = new Set(["INVALID_ARGUMENT", "OUT_OF_RANGE", "NOT_FOUND"]);

/**
 * The outcome of a write that threw, from the error's `code` (design.md,
 * Errors). "failed" only when the code guarantees that nothing was written,
 * now or later; everything else is "unknown":
 *
 * - INVALID_ARGUMENT, OUT_OF_RANGE, NOT_FOUND: checked before anything is
 *   sequenced (src/client/volume.ts checks range and arguments before it
 *   queues; a node refuses a bad request before it appends).
 * - NO_QUORUM: sometimes "nothing was written" (refused at the door,
 *   src/core/replica.ts), sometimes "may or may not have been written" (a
 *   replication timeout, or a failover that found no quorum with the write
 *   in flight). Same code, so unknown: the messages are not a contract.
 * - FENCED / STALE_EPOCH: a write in flight when the mount was fenced may
 *   already be in a majority's logs and be committed by the next mount. Only
 *   a write issued after the process saw its volume fenced is refused by the
 *   client library before it is sent (`fencedBeforeInvoke`).
 * - CORRUPT, DISK_FAILED, VOLUME_BUSY, a timeout, a transport error, or no
 *   code at all: unknown.
 */
export function classifyWriteError(code: string | undefined, opts?: { readonly fencedBeforeInvoke?: boolean }): Outcome {
  if (code === undefined) return "unknown";
  if (NOTHING_WRITTEN.has(code)) return "failed";
  if ((code === "FENCED" || code === "STALE_EPOCH") && opts?.fencedBeforeInvoke === true) return "failed";
  return "unknown";
}

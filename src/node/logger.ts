/**
 * The daemon's structured log: pino, JSON lines on stdout, level from
 * REPLIVOL_LOG_LEVEL (default info). Protocol traces are logged at debug.
 */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

export function createLogger(nodeId: string): Logger {
  const wanted = process.env["REPLIVOL_LOG_LEVEL"] ?? "info";
  const level = LEVELS.has(wanted) ? wanted : "info";
  // Synchronous writes: the last lines before a crash or exit are the ones that matter.
  const logger = pino({ level, base: { node: nodeId } }, pino.destination({ dest: 1, sync: true }));
  if (level !== wanted) logger.warn({ REPLIVOL_LOG_LEVEL: wanted }, "unknown log level, using info");
  return logger;
}

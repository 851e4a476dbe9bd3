import type { ClientId, LogRecord, Lsn } from "./types.js";

/** The highest clientSeq seen from a client, and where. */
export interface ClientSession {
  readonly clientId: ClientId;
  readonly clientSeq: number;
  readonly lsn: Lsn;
}

/**
 * Folds records into a bounded session table (most recent clients by lsn),
 * so a new primary can tell a replayed write from a new one.
 */
export function foldSessions(
  sessions: readonly ClientSession[],
  records: readonly LogRecord[],
  sessionsMax: number,
): ClientSession[] {
  const byClient = new Map<ClientId, ClientSession>();
  for (const s of sessions) byClient.set(s.clientId, s);
  for (const r of records) {
    if (r.kind === "mountStart" || r.kind === "config") continue;
    const prev = byClient.get(r.clientId);
    if (prev === undefined || prev.clientSeq < r.clientSeq) {
      byClient.set(r.clientId, { clientId: r.clientId, clientSeq: r.clientSeq, lsn: r.lsn });
    }
  }
  const all = [...byClient.values()].sort((a, b) => b.lsn - a.lsn);
  return all.slice(0, sessionsMax);
}

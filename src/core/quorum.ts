/**
 * Quorum arithmetic, kept apart so it can be checked against naive versions.
 */
import { compareVersion, type Epoch, type Lsn, type NodeId, type Version } from "./types.js";

/**
 * The commit point: the highest lsn held durably by `quorum` voters whose
 * record is of the current epoch (Raft: only records of the current term are
 * committed by counting; earlier ones commit with them). Never goes back.
 */
export function commitPoint(
  voterMatchLsns: readonly number[],
  quorum: number,
  currentCommit: Lsn,
  epochAt: (lsn: Lsn) => Epoch | null,
  currentEpoch: Epoch,
): Lsn {
  if (voterMatchLsns.length < quorum) return currentCommit;
  const sorted = [...voterMatchLsns].sort((a, b) => b - a);
  const candidate = sorted[quorum - 1] as Lsn;
  if (candidate <= currentCommit) return currentCommit;
  return epochAt(candidate) === currentEpoch ? candidate : currentCommit;
}

/**
 * When the lease began: the primary counts itself, so it needs quorum - 1
 * followers; the lease starts at the send time of the oldest message among
 * the freshest quorum - 1 answers. Null without enough answers.
 */
export function leaseStart(followerAckSentTicks: readonly (number | null)[], quorum: number, now: number): number | null {
  if (quorum <= 1) return now;
  const acked = followerAckSentTicks.filter((t): t is number => t !== null).sort((a, b) => b - a);
  const t = acked[quorum - 2];
  return t === undefined ? null : t;
}

export interface PromiseInfo {
  readonly node: NodeId;
  readonly head: Version;
  readonly consistent: boolean;
  readonly unsurePastHead: boolean;
}

/**
 * Rule 2 with protocol-aware recovery: the base is the consistent promiser
 * with the greatest head; it is safe only if enough promisers that are sure
 * of their log (not cut at recovery) have a head no greater than the base's
 * that every possible write quorum meets one of them: then any committed
 * record is in the base. Returns null when more promises are needed.
 */
export function chooseBase(
  promises: readonly PromiseInfo[],
  replicaCount: number,
  quorum: number,
  preferred: NodeId,
): PromiseInfo | null {
  if (promises.length < quorum) return null;
  let base: PromiseInfo | null = null;
  for (const p of promises) {
    if (!p.consistent) continue;
    if (base === null) {
      base = p;
      continue;
    }
    const c = compareVersion(p.head, base.head);
    if (c > 0 || (c === 0 && p.node === preferred)) base = p;
  }
  if (base === null) return null;
  const b = base;
  const witnesses = promises.filter((p) => !p.unsurePastHead && compareVersion(p.head, b.head) <= 0).length;
  return witnesses >= replicaCount - quorum + 1 ? base : null;
}

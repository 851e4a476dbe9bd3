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
  const candidate = kthLargest(voterMatchLsns, quorum) as Lsn;
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
  return kthLargest(followerAckSentTicks, quorum - 1);
}

/**
 * The k-th largest of the values that are not null (k from 1), or null when
 * fewer than k are. By counting, without sorting or allocating: this runs on
 * every step of a primary, over a handful of replicas.
 */
function kthLargest(values: readonly (number | null)[], k: number): number | null {
  for (const v of values) {
    if (v === null) continue;
    let greater = 0;
    let notLess = 0;
    for (const w of values) {
      if (w === null) continue;
      if (w > v) greater++;
      if (w >= v) notLess++;
    }
    if (greater < k && k <= notLess) return v;
  }
  return null;
}

export interface PromiseInfo {
  readonly node: NodeId;
  readonly head: Version;
  readonly consistent: boolean;
  readonly unsurePastHead: boolean;
  /** See PromiseGranted.witnessHead. */
  readonly witnessHead: Version;
}

/** What a promiser's log is trusted up to: its head, or its witness head while inconsistent. */
export function trustedHead(p: PromiseInfo): Version {
  return p.consistent ? p.head : p.witnessHead;
}

export interface BaseChoice {
  /** The promiser whose log the mount takes, up to `target`. */
  readonly source: PromiseInfo;
  /** The head of the history the mount continues. */
  readonly target: Version;
}

/** The promiser whose trusted log is the most up to date (ties go to `preferred`). */
export function mostUpToDate(promises: readonly PromiseInfo[], preferred: NodeId): PromiseInfo | null {
  let source: PromiseInfo | null = null;
  for (const p of promises) {
    const c = source === null ? 1 : compareVersion(trustedHead(p), trustedHead(source));
    if (c > 0 || (c === 0 && p.node === preferred)) source = p;
  }
  return source;
}

/**
 * Rule 2 with protocol-aware recovery. Committed records are acknowledged
 * by W replicas that were consistent when they acknowledged. The history a
 * mount continues is the most up-to-date trusted log among its promisers
 * (Raft's vote rule): a consistent replica's log up to its head, an
 * inconsistent one's up to its witness head (what it took while still
 * consistent; nothing after that ever counted toward W). That history holds
 * every committed record if every possible write quorum meets a witness: a
 * promiser sure of its log (not cut at recovery) whose witness head is no
 * greater than the target. So N - W + 1 witnesses are needed. Returns null
 * when more promises are needed.
 *
 * With a configuration of two voter sets (joint, while a replica is
 * replaced) the promises must hold a majority of each set, and within each
 * set its N - W + 1 witnesses. A promise of a node in no set (a learner) may
 * still be the base: a log at least as up to date as every witness holds
 * every committed record.
 */
export function chooseBaseAcross(promises: readonly PromiseInfo[], sets: readonly (readonly NodeId[])[], preferred: NodeId): BaseChoice | null {
  const source = mostUpToDate(promises, preferred);
  if (source === null) return null;
  const target = trustedHead(source);
  for (const set of sets) {
    const quorum = Math.floor(set.length / 2) + 1;
    const inSet = promises.filter((p) => set.includes(p.node));
    if (inSet.length < quorum) return null;
    const witnesses = inSet.filter((p) => !p.unsurePastHead && compareVersion(p.witnessHead, target) <= 0).length;
    if (witnesses < set.length - quorum + 1) return null;
  }
  return { source, target };
}

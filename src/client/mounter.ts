/**
 * Finding a node to coordinate a mount: try the volume's replica nodes,
 * follow a node's `replivol-retry-at` redirect, give up at a deadline.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { NoQuorumError, NotFoundError, type VolumeError } from "./errors.js";
import { clientLimits } from "./limits.js";
import { CallError, type MountReplyMessage, type NodeConnection } from "./wire.js";

export interface MountHost {
  readonly clientId: string;
  /** The connection to a node of the cluster file, or null for an unknown id. */
  connection(nodeId: string): NodeConnection | null;
  /** The volume's replica nodes, as a node that holds a replica reports them. */
  replicaNodes(volume: string, signal?: AbortSignal): Promise<string[]>;
}

export interface MountPlan {
  readonly volume: string;
  readonly takeover: boolean;
  readonly readOnly: boolean;
  /** Epoch milliseconds (Date.now) after which no new attempt starts. */
  readonly deadline: number;
  /** Tried first, unless it is `avoid` (MountOptions.via). */
  readonly via: string | null;
  /** Tried last (the primary that just failed). */
  readonly avoid: string | null;
  /**
   * Failover keeps trying through VOLUME_BUSY (a mount in progress, a
   * racing attempt of our own); a first mount reports it at once.
   */
  readonly retryBusy: boolean;
  readonly attemptsMax: number;
  /** Passes over the replica set (a first mount makes one; a failover keeps going until the deadline). */
  readonly roundsMax: number;
  readonly signal?: AbortSignal;
}

export interface Mounted {
  readonly node: string;
  readonly reply: MountReplyMessage;
}

/**
 * The nodes a mount is tried through, in order: `via` first (when it holds a
 * replica and is not `avoid`), then the replica set's order, `avoid` last.
 */
export function mountOrder(replicas: readonly string[], via: string | null, avoid: string | null): string[] {
  const first = via !== null && via !== avoid && replicas.includes(via) ? [via] : [];
  const last = avoid !== null && replicas.includes(avoid) ? [avoid] : [];
  return [...first, ...replicas.filter((n) => !first.includes(n) && !last.includes(n)), ...last];
}

export class MountFailed extends Error {
  override name = "MountFailed";
  readonly error: VolumeError;
  readonly attempts: number;
  constructor(error: VolumeError, attempts: number) {
    super(error.message, { cause: error });
    this.error = error;
    this.attempts = attempts;
  }
}

/** Mounts `plan.volume` through one of its replica nodes, or throws MountFailed with the error that explains why not. */
export async function mountSomewhere(host: MountHost, plan: MountPlan): Promise<Mounted> {
  let attempts = 0;
  let lastError: VolumeError | null = null;
  let notFound = 0;
  let rounds = 0;
  while (attempts < plan.attemptsMax && rounds < plan.roundsMax && Date.now() < plan.deadline) {
    rounds++;
    plan.signal?.throwIfAborted();
    let replicas: string[];
    try {
      replicas = await host.replicaNodes(plan.volume, plan.signal);
    } catch (e) {
      if (!(e instanceof CallError)) throw e;
      if (e.error.code === "NOT_FOUND") throw new MountFailed(e.error, attempts);
      lastError = e.error;
      attempts++;
      if (rounds < plan.roundsMax) await pause(plan);
      continue;
    }
    const order = mountOrder(replicas, plan.via, plan.avoid);
    const redirects: string[] = [];
    const tried = new Set<string>();
    notFound = 0;
    while (order.length > 0 || redirects.length > 0) {
      const node = redirects.shift() ?? order.shift();
      if (node === undefined || tried.has(node)) continue;
      if (attempts >= plan.attemptsMax || Date.now() >= plan.deadline) break;
      tried.add(node);
      const conn = host.connection(node);
      if (conn === null) {
        lastError = new NotFoundError(`Volume ${plan.volume} has a replica on node ${node}, which the cluster file does not list: add it`);
        continue;
      }
      attempts++;
      plan.signal?.throwIfAborted();
      // Each call waits out the node's whole mount bound, even past the
      // deadline: a call abandoned while the node's mount goes on could leave
      // a mount of ours that later fences the one we settled on.
      try {
        const reply = await conn.mount({ volume: plan.volume, clientId: host.clientId, takeover: plan.takeover, readOnly: plan.readOnly }, clientLimits.mountCallTimeoutMs, plan.signal);
        return { node, reply };
      } catch (e) {
        plan.signal?.throwIfAborted();
        if (!(e instanceof CallError)) throw e;
        lastError = e.error;
        switch (e.error.code) {
          case "FENCED":
          case "STALE_EPOCH":
          case "INVALID_ARGUMENT":
          case "OUT_OF_RANGE":
            throw new MountFailed(e.error, attempts);
          case "VOLUME_BUSY":
            if (!plan.retryBusy) throw new MountFailed(e.error, attempts);
            break;
          case "NOT_FOUND":
            notFound++;
            break;
          case "NO_QUORUM":
          case "CORRUPT":
          case "DISK_FAILED":
            break;
        }
        if (e.retryAt !== null && !tried.has(e.retryAt)) redirects.push(e.retryAt);
      }
    }
    if (notFound > 0 && notFound === tried.size) {
      throw new MountFailed(new NotFoundError(`Volume ${plan.volume} is on none of its replica nodes ${replicas.join(", ")}: it was removed`), attempts);
    }
    if (rounds < plan.roundsMax) await pause(plan);
  }
  throw new MountFailed(
    lastError ?? new NoQuorumError(`No replica node of volume ${plan.volume} could coordinate a mount in time: start the nodes that are down, then try again`),
    attempts,
  );
}

async function pause(plan: MountPlan): Promise<void> {
  const left = plan.deadline - Date.now();
  if (left <= 0) return;
  await sleep(Math.min(clientLimits.failoverRoundPauseMs, left), undefined, plan.signal === undefined ? {} : { signal: plan.signal });
}

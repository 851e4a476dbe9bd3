/**
 * A volume's configuration as the protocol uses it: who votes, who is sent
 * records, and the `config` records that carry a new one through the log.
 */
import { assert } from "./assert.js";
import type { NodeId, VolumeConfig } from "./types.js";

/** The voter sets whose majorities every commit, lease and mount needs: one, or two while joint. */
export function voterSets(c: VolumeConfig): readonly (readonly NodeId[])[] {
  return c.previousReplicas === undefined ? [c.replicas] : [c.previousReplicas, c.replicas];
}

/** Whether `node` votes in `c` (in either set while joint). */
export function isVoter(c: VolumeConfig, node: NodeId): boolean {
  return c.replicas.includes(node) || (c.previousReplicas?.includes(node) ?? false);
}

/** Every node that holds a replica under `c`: the voters and a learner. */
export function configMembers(c: VolumeConfig): NodeId[] {
  const out = new Set<NodeId>(c.replicas);
  for (const n of c.previousReplicas ?? []) out.add(n);
  if (c.replacement !== undefined) out.add(c.replacement.to);
  return [...out];
}

/** Largest encoded configuration a `config` record may carry. */
export const CONFIG_BYTES_MAX = 4096;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeConfig(c: VolumeConfig): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(c));
  assert(bytes.length <= CONFIG_BYTES_MAX, "An encoded configuration fits a config record");
  return bytes;
}

/** The configuration a `config` record carries; throws on anything that is not one. */
export function decodeConfig(bytes: Uint8Array): VolumeConfig {
  if (bytes.length === 0 || bytes.length > CONFIG_BYTES_MAX) throw new Error(`A configuration of ${bytes.length} bytes`);
  const o = JSON.parse(decoder.decode(bytes)) as Record<string, unknown>;
  const nodes = (x: unknown, what: string): NodeId[] => {
    if (!Array.isArray(x) || x.length === 0 || x.length > 16 || !x.every((n) => typeof n === "string" && n.length > 0 && n.length <= 64)) {
      throw new Error(`Configuration field ${what} is not a list of node ids`);
    }
    if (new Set(x).size !== x.length) throw new Error(`Configuration field ${what} repeats a node`);
    return x as NodeId[];
  };
  const num = (x: unknown, what: string): number => {
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw new Error(`Configuration field ${what} is not a count`);
    return x;
  };
  if (typeof o["name"] !== "string") throw new Error("Configuration without a name");
  const replacement = o["replacement"] as Record<string, unknown> | undefined;
  let rep: VolumeConfig["replacement"];
  if (replacement !== undefined) {
    const [from, to] = nodes([replacement["from"], replacement["to"]], "replacement");
    if (from === undefined || to === undefined) throw new Error("Configuration field replacement is incomplete");
    rep = { from, to };
  }
  return {
    name: o["name"],
    blockSize: num(o["blockSize"], "blockSize"),
    blockCount: num(o["blockCount"], "blockCount"),
    replicas: nodes(o["replicas"], "replicas"),
    configVersion: num(o["configVersion"], "configVersion"),
    ...(o["previousReplicas"] === undefined ? {} : { previousReplicas: nodes(o["previousReplicas"], "previousReplicas") }),
    ...(rep === undefined ? {} : { replacement: rep }),
  };
}

/** The configuration that replaces `from` by `to` ends in. */
export function replacedSet(replicas: readonly NodeId[], from: NodeId, to: NodeId): NodeId[] {
  return replicas.map((n) => (n === from ? to : n));
}

/** Whether `bytes` decode to a configuration of the volume `of` (same name and geometry). */
export function configRecordFits(bytes: Uint8Array, of: VolumeConfig): boolean {
  try {
    const c = decodeConfig(bytes);
    return c.name === of.name && c.blockSize === of.blockSize && c.blockCount === of.blockCount;
  } catch {
    return false;
  }
}

/** The configuration after `records`: that of the last config record among them, else `config`. */
export function configAfter(config: VolumeConfig, records: readonly { readonly kind: string; readonly data: Uint8Array | null }[]): VolumeConfig {
  for (let i = records.length - 1; i >= 0; i--) {
    const r = records[i];
    if (r !== undefined && r.kind === "config" && r.data !== null) return decodeConfig(r.data);
  }
  return config;
}

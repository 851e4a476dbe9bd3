/**
 * The cluster file: which nodes exist and where they listen. Read by volnode
 * (to reach its peers) and by the client library and volctl (to reach the
 * nodes). YAML, checked against a schema; every bad field is named.
 *
 *   nodes:
 *     - id: n1
 *       address: 127.0.0.1:7101
 *   resyncBytesPerSec: 104857600   # optional: a number, or "unlimited"; default DEFAULT_RESYNC_BYTES_PER_SEC
 */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { z } from "zod";
import { VolumeError } from "../core/errors.js";
import { asNodeId, type NodeId } from "../core/types.js";
import { limits } from "../core/limits.js";

export interface ClusterNode {
  readonly id: NodeId;
  /** host:port */
  readonly address: string;
}

export interface ClusterConfig {
  readonly nodes: readonly ClusterNode[];
  /** Each node's resync rate (bytes/s) until changed at run time; null: unthrottled. */
  readonly resyncBytesPerSec: number | null;
}

/**
 * A node's resync rate when the cluster file names none: low enough that
 * foreground I/O keeps at least half its throughput during a resync on a
 * small machine (measured with `npm run bench`'s resync rows; README).
 */
export const DEFAULT_RESYNC_BYTES_PER_SEC = 32 * 1024 * 1024;

export const NODE_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const ADDRESS_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const schema = z
  .object({
    nodes: z
      .array(
        z
          .object({
            id: z.string().regex(NODE_ID_PATTERN, "a node id is 1-32 lowercase letters, digits, '-' or '_'"),
            address: z
              .string()
              .regex(ADDRESS_PATTERN, "an address is host:port")
              .refine((a) => {
                const port = Number(a.slice(a.lastIndexOf(":") + 1));
                return port >= 1 && port <= 65535;
              }, "the port is 1-65535"),
          })
          .strict(),
      )
      .min(1, "list at least one node")
      .max(limits.clusterNodesMax, `at most ${limits.clusterNodesMax} nodes`),
    resyncBytesPerSec: z.union([z.number().int().positive(), z.literal("unlimited")]).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.nodes.forEach((n, i) => {
      if (seen.has(n.id)) ctx.addIssue({ code: "custom", path: ["nodes", i, "id"], message: `node id ${n.id} is listed twice` });
      seen.set(n.id, i);
    });
    const addresses = new Set<string>();
    c.nodes.forEach((n, i) => {
      if (addresses.has(n.address)) ctx.addIssue({ code: "custom", path: ["nodes", i, "address"], message: `address ${n.address} is listed twice` });
      addresses.add(n.address);
    });
  });

/** Parses a cluster file's text; `source` names it in errors. */
export function parseClusterConfig(text: string, source: string): ClusterConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new VolumeError("INVALID_ARGUMENT", `Cluster file ${source} is not valid YAML: ${(e as Error).message}`);
  }
  const r = schema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "(top)"}: ${i.message}`);
    throw new VolumeError("INVALID_ARGUMENT", `Cluster file ${source} is invalid: ${problems.join("; ")}`);
  }
  return {
    nodes: r.data.nodes.map((n) => ({ id: asNodeId(n.id), address: n.address })),
    resyncBytesPerSec: r.data.resyncBytesPerSec === "unlimited" ? null : (r.data.resyncBytesPerSec ?? DEFAULT_RESYNC_BYTES_PER_SEC),
  };
}

export async function loadClusterConfig(path: string): Promise<ClusterConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new VolumeError("NOT_FOUND", `Cannot read cluster file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseClusterConfig(text, path);
}

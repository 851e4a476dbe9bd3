/**
 * Loads the services of proto/ once (proto-loader, sharing protobufjs 7),
 * and the same files once more as a protobufjs Root for the hot paths that
 * encode without proto-loader (protoType).
 */
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { dirname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

// src/rpc/proto.ts, or dist/src/rpc/proto.js after a build.
const here = dirname(fileURLToPath(import.meta.url));
const PROTO_DIR = resolve(here, here.includes(`${sep}dist${sep}`) ? "../../../proto" : "../../proto");

const LOADER_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, bytes: Buffer } as const;

let loaded: GrpcObject | null = null;

export function protoDir(): string {
  return PROTO_DIR;
}

export function grpcServices(): GrpcObject {
  if (loaded === null) {
    const def = loadSync(["volume.proto", "replication.proto"], { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
    loaded = loadPackageDefinition(def);
  }
  return loaded;
}

function service(path: string): ServiceClientConstructor {
  let node: unknown = grpcServices();
  for (const part of path.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`No service ${path} in proto/`);
  return node as ServiceClientConstructor;
}

export const volumeService = (): ServiceClientConstructor => service("replivol.volume.v1.Volume");
export const adminService = (): ServiceClientConstructor => service("replivol.volume.v1.Admin");
export const replicationService = (): ServiceClientConstructor => service("replivol.replication.v1.Replication");

let root: protobuf.Root | null = null;

/**
 * A message type of proto/ as protobufjs builds it (the same files and
 * field names as proto-loader's): for a hot path whose objects already
 * hold the wire's types, so that encoding can skip proto-loader's
 * `fromObject` copy of every message.
 */
export function protoType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}

/** An enum of proto/ as protobufjs builds it (names to numbers in `values`). */
export function protoEnum(fullName: string): protobuf.Enum {
  return protoRoot().lookupEnum(fullName);
}

function protoRoot(): protobuf.Root {
  if (root === null) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => resolve(PROTO_DIR, target);
    root = r.loadSync(["volume.proto", "replication.proto"], { keepCase: LOADER_OPTIONS.keepCase });
  }
  return root;
}

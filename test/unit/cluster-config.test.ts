import { describe, expect, it } from "vitest";
import { VolumeError } from "../../src/core/errors.js";
import { DEFAULT_RESYNC_BYTES_PER_SEC, parseClusterConfig } from "../../src/rpc/cluster-config.js";

describe("the cluster file", () => {
  it("parses nodes and the optional resync rate", () => {
    const c = parseClusterConfig("nodes:\n  - id: n1\n    address: 127.0.0.1:7101\n  - id: n2\n    address: '[::1]:7102'\nresyncBytesPerSec: 1000\n", "c.yaml");
    expect(c.nodes.map((n) => `${n.id}@${n.address}`)).toEqual(["n1@127.0.0.1:7101", "n2@[::1]:7102"]);
    expect(c.resyncBytesPerSec).toBe(1000);
    expect(parseClusterConfig("nodes:\n  - id: n1\n    address: 127.0.0.1:7101\n", "c.yaml").resyncBytesPerSec).toBe(DEFAULT_RESYNC_BYTES_PER_SEC);
    expect(parseClusterConfig("nodes:\n  - id: n1\n    address: 127.0.0.1:7101\nresyncBytesPerSec: unlimited\n", "c.yaml").resyncBytesPerSec).toBeNull();
  });

  const bad: [string, string, RegExp][] = [
    ["not YAML", "nodes: [", /not valid YAML/],
    ["no nodes", "nodes: []\n", /nodes: list at least one node/],
    ["a bad id", "nodes:\n  - id: N 1\n    address: a:1\n", /nodes\.0\.id: a node id is/],
    ["a bad port", "nodes:\n  - id: n1\n    address: host:70000\n", /nodes\.0\.address: the port is 1-65535/],
    ["no port", "nodes:\n  - id: n1\n    address: host\n", /nodes\.0\.address: an address is host:port/],
    ["a duplicate id", "nodes:\n  - id: n1\n    address: a:1\n  - id: n1\n    address: a:2\n", /nodes\.1\.id: node id n1 is listed twice/],
    ["an unknown field", "nodes:\n  - id: n1\n    address: a:1\n    weight: 3\n", /weight/],
    ["a scalar", "42\n", /\(top\)/],
  ];
  for (const [what, text, message] of bad) {
    it(`names what is wrong: ${what}`, () => {
      let err: unknown;
      try {
        parseClusterConfig(text, "c.yaml");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VolumeError);
      expect((err as VolumeError).code).toBe("INVALID_ARGUMENT");
      expect((err as VolumeError).message).toMatch(/^Cluster file c\.yaml /);
      expect((err as VolumeError).message).toMatch(message);
    });
  }
});

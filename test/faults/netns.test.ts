/**
 * `npm run bench:faults -- --netns` (root): volnodes in network namespaces,
 * links cut with iptables inside them (bench/faults/netns.ts). One short
 * scenario must pass, and nothing the run created may be left: no
 * namespace, no root veth. Skipped without root, `ip netns` or iptables.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { NetnsNetwork, netnsUnavailable } from "../../bench/faults/netns.js";
import { runFaults } from "../../bench/faults/run.js";

const unavailable = netnsUnavailable();

/** Namespaces and links of the bench (named rv-…/rv…) present now. */
function ours(): { namespaces: string[]; links: string[] } {
  const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith("rv-"));
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
    .split("\n")
    .map((l) => (l.split(": ")[1] ?? "").split("@")[0] ?? "")
    .filter((n) => /^rv213-\d+$/.test(n));
  return { namespaces, links };
}

describe.skipIf(unavailable !== null)(`bench:faults --netns${unavailable === null ? "" : ` (skipped: ${unavailable})`}`, () => {
  it("cuts and heals links with iptables rules inside the namespaces, and removes everything", async () => {
    const before = ours();
    const net = await NetnsNetwork.create(["n1", "n2"]);
    try {
      expect(ours().namespaces).toEqual(expect.arrayContaining([net.hub, net.node("n1").namespace, net.node("n2").namespace]));
      net.cutOneWay("n1", "n2");
      net.cutClients("n1", "both");
      const rules = net.rules();
      const n1 = net.node("n1");
      const n2 = net.node("n2");
      expect(rules["n2"]).toEqual([`-A RV-IN -s ${n1.peerIp}/32 -d ${n2.peerIp}/32 -p tcp -m tcp --dport ${n2.port} -j DROP`, `-A RV-IN -s ${n1.peerIp}/32 -d ${n2.peerIp}/32 -p tcp -m tcp --sport ${n1.port} -j DROP`]);
      expect(rules["n1"]).toEqual([`-A RV-IN -d ${n1.clientIp}/32 -p tcp -m tcp --dport ${n1.port} -j DROP`, `-A RV-OUT -s ${n1.clientIp}/32 -p tcp -m tcp --sport ${n1.port} -j DROP`]);
      net.heal();
      expect(net.rules()).toEqual({ n1: [], n2: [] });
    } finally {
      await net.destroy();
    }
    expect(net.leftovers()).toEqual([]);
    expect(ours()).toEqual(before);
  });

  it("runs primary-cut-from-peers with the nodes in namespaces, and it passes", { timeout: 120_000 }, async () => {
    const before = ours();
    const lines: string[] = [];
    const report = await runFaults({ quick: true, runs: 1, scenarios: ["primary-cut-from-peers"], bugs: [], outDir: null, keep: false, parallel: 1, netns: true, log: (l) => lines.push(l) });
    const row = report.rows[0];
    expect(report.rows.length).toBe(1);
    expect(report.passed, `${row?.notes ?? ""}\n${lines.join("\n")}`).toBe(true);
    expect(row?.runs).toBe(1);
    expect(row?.faults).toBeGreaterThan(0);
    expect(row?.operations).toBeGreaterThan(100);
    expect(lines.join("\n")).toMatch(/fault partition-primary-peers/);
    expect(ours()).toEqual(before);
  });
});

/**
 * The quick fault benchmark (`npm run bench:faults -- --quick`) as part of
 * npm test: every scenario once, briefly, on real processes, must pass; and
 * a planted bug must make the scenarios meant to catch it fail, on the
 * criterion the bug breaks: every bug of the simulator (ack-before-quorum,
 * no-lease-wait, base-any-replica, count-inconsistent, repair-no-overlay,
 * apply-uncommitted, resync-mark-early and accept-stale-epoch; the last also by
 * primary-cut-from-peers, but only in some runs, as timing allows; asserted
 * with takeover-cut-primary, which caught it in every run tried). Reports go
 * to a temp directory.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUICK_PARALLEL, runFaults, type FaultsReport } from "../../bench/faults/run.js";
import { SCENARIOS } from "../../bench/faults/scenarios.js";

const lines: string[] = [];
const log = (l: string): void => {
  lines.push(l);
};

let out = "";
beforeAll(async () => {
  out = await mkdtemp(path.join(tmpdir(), "replivol-faults-test-"));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

/** One quick run of `scenarios` with `bug` planted in every node, no report written. */
function withBug(scenarios: readonly string[], bug: string): Promise<FaultsReport> {
  return runFaults({ quick: true, runs: 1, scenarios: [...scenarios], bugs: [bug], outDir: null, keep: false, parallel: scenarios.length, log });
}

function explain(r: FaultsReport): string {
  return `${r.rows.map((x) => `${x.scenario}: ${x.passed ? "pass" : "FAIL"} ${x.notes ?? ""}`).join("\n")}\n--- log ---\n${lines.slice(-60).join("\n")}`;
}

describe("bench:faults --quick", () => {
  it("runs every scenario once and every one passes", { timeout: 15 * 60_000 }, async () => {
    const report = await runFaults({ quick: true, runs: 1, scenarios: null, bugs: [], outDir: out, keep: false, parallel: QUICK_PARALLEL, log });
    expect(report.rows.map((r) => r.scenario)).toEqual(SCENARIOS.map((s) => s.name));
    expect(report.passed, explain(report)).toBe(true);
    for (const r of report.rows) {
      if (r.runs === 0) {
        expect(r.notes).toMatch(/skipped: needs root/);
        continue;
      }
      expect(r.operations, r.scenario).toBeGreaterThan(100);
      expect(r.faults, r.scenario).toBeGreaterThan(0);
      expect(r.lostAcks + r.staleAcks + r.nonLinearizableReads + r.undecodableReads + r.divergentBlocks + r.fencedWritesAcked + r.fencedWritesVisible, r.scenario).toBe(0);
    }
    expect(report.markdownFile).not.toBeNull();
    const md = readFileSync(report.markdownFile ?? "", "utf8");
    for (const s of SCENARIOS) expect(md).toContain(s.name);
    const svgs = [...md.matchAll(/\]\(([^)]+\.svg)\)/g)].map((m) => m[1] ?? "");
    expect(svgs.length).toBeGreaterThan(0);
    for (const f of svgs) expect(existsSync(path.join(out, f)), f).toBe(true);
  });

  it("catches ack-before-quorum: the primary cut off from its peers acknowledges writes that are then lost or read stale", { timeout: 5 * 60_000 }, async () => {
    const report = await withBug(["primary-cut-from-peers", "one-way-partition"], "ack-before-quorum");
    expect(report.passed, explain(report)).toBe(false);
    // Each of the two is meant to catch it; one catching it is enough (timing decides how many writes the cut-off primary acknowledges alone).
    const caught = report.rows.filter((r) => !r.passed && r.lostAcks + r.staleAcks + r.nonLinearizableReads > 0);
    expect(caught.length, explain(report)).toBeGreaterThan(0);
  });

  it("catches no-lease-wait: the old primary serves reads under its lease after the new mount acknowledged writes", { timeout: 5 * 60_000 }, async () => {
    const report = await withBug(["takeover-cut-primary"], "no-lease-wait");
    expect(report.passed, explain(report)).toBe(false);
    expect(report.rows[0]?.nonLinearizableReads ?? 0, explain(report)).toBeGreaterThan(0);
  });

  // A replica told to unwind records it has applied refuses and goes out of service (the store's
  // guard): that is how both bugs show here, besides any stale read the checker finds first.
  const unwound = (r: { notes?: string; lostAcks: number; nonLinearizableReads: number }): boolean =>
    /Cannot drop log records/.test(r.notes ?? "") || r.lostAcks + r.nonLinearizableReads > 0;

  it("catches base-any-replica (a mount continues a lagging replica's history) and accept-stale-epoch (a replica takes the old primary's held appends)", { timeout: 8 * 60_000 }, async () => {
    const [base, stale] = await Promise.all([
      withBug(["takeover-lagging-replica"], "base-any-replica"),
      withBug(["takeover-cut-primary"], "accept-stale-epoch"),
    ]);
    for (const report of [base, stale]) {
      expect(report.passed, explain(report)).toBe(false);
      const row = report.rows[0];
      expect(row !== undefined && unwound(row), explain(report)).toBe(true);
    }
  });

  it("catches count-inconsistent (a resyncing replica counted toward W) and repair-no-overlay (a repaired block without the writes after its copy)", { timeout: 8 * 60_000 }, async () => {
    const [count, repair] = await Promise.all([
      withBug(["resync-cut-source-crash"], "count-inconsistent"),
      withBug(["corrupt-primary-hot"], "repair-no-overlay"),
    ]);
    for (const report of [count, repair]) {
      expect(report.passed, explain(report)).toBe(false);
      const row = report.rows[0];
      // count-inconsistent acknowledges writes that only the primary and the resyncing replica
      // hold: those that applied them then refuse to unwind them for the next primary, which
      // in one CI run left too few replicas for the final verification to mount (and so to count
      // the lost writes) while the workload's reads had seen none of them.
      const caught = row !== undefined && (row.lostAcks + row.staleAcks + row.nonLinearizableReads > 0 || (report === count && unwound(row)));
      expect(caught, explain(report)).toBe(true);
      // Caught with the scenario's own preconditions met (its guards name what was missing).
      expect(row?.notes ?? "", explain(report)).not.toMatch(/no region resync|resync had ended|no record reached|no mount chose|fewer than \d+ blocks were repaired|the primary was not/);
    }
  });

  it("catches apply-uncommitted (the old primary applied records that are then cut) and resync-mark-early (a replica marked in sync before its regions arrived)", { timeout: 8 * 60_000 }, async () => {
    const [apply, early] = await Promise.all([
      withBug(["takeover-cut-primary"], "apply-uncommitted"),
      withBug(["resync-target-crash"], "resync-mark-early"),
    ]);
    expect(apply.passed, explain(apply)).toBe(false);
    const a = apply.rows[0];
    expect(a !== undefined && unwound(a), explain(apply)).toBe(true);
    expect(early.passed, explain(early)).toBe(false);
    // Its blocks were never copied: they differ from the others' (or reads saw it first), or, as in
    // one CI run on a loaded machine, the replicas never got back in sync after healing (the
    // scenario's other criterion; the run without the bug has always converged).
    const e = early.rows[0];
    const caught = e !== undefined && (e.divergentBlocks + e.lostAcks + e.nonLinearizableReads > 0 || /replicas not in sync after healing/.test(e.notes ?? ""));
    expect(caught, explain(early)).toBe(true);
  });
});

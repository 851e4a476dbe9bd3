import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { HistoryEvent } from "../../bench/faults/history.js";
import { bucketMsFor, formatBytes, renderJson, renderMarkdown, renderSvg, timelineBuckets, writeReport, type ScenarioRow, type Timeline } from "../../tools/faults-report.js";

const T0 = 5_000_000_000_000n; // a monotonic clock does not start at 0
const at = (ms: number): bigint => T0 + BigInt(Math.round(ms * 1e6));

/** Deterministic pseudo-random numbers, so the picture is the same every run. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * 30 s of a primary-kill run: ~1000 ops/s at ~1 ms, the primary killed at
 * 8 s (writes stall ~1.5 s until the client library fails over, some end
 * unknown), the node restarted at 14 s and resynced, a partition of n2 from
 * 18 to 23 s that costs nothing but a little latency.
 */
export function syntheticTimeline(): Timeline {
  const rnd = seeded(7);
  const events: HistoryEvent[] = [];
  events.push({ type: "mount", process: "c1", invokeNs: at(0), completeNs: at(40), outcome: "ok", epoch: 1, takeover: true });
  let seq = 0;
  const killMs = 8000;
  const failoverDoneMs = 9500;
  for (let t = 50; t < 30_000; t += 1 + rnd() * 1.2) {
    let latency = 0.4 + rnd() * 0.8 + (rnd() < 0.004 ? 5 + rnd() * 20 : 0);
    if (t >= 18_000 && t < 23_000) latency *= 1.6;
    if (t >= 14_000 && t < 16_000) latency *= 2.5; // resync competes with the workload
    let outcome: "ok" | "unknown" = "ok";
    if (t >= killMs && t < failoverDoneMs) {
      if (rnd() < 0.8) continue; // queue depth 4: few ops are in flight while stalled
      latency = failoverDoneMs - t + rnd() * 30;
      if (rnd() < 0.2) outcome = "unknown";
    }
    const block = Math.floor(rnd() * 64);
    const invokeNs = at(t);
    const completeNs = at(t + latency);
    if (rnd() < 0.5) {
      events.push({ type: "write", process: "c1", block, value: { block, writer: "c1", seq: ++seq, epoch: t < failoverDoneMs ? 1 : 2 }, invokeNs, completeNs, outcome, mountEpoch: 1 });
    } else {
      events.push({ type: "read", process: "c1", block, invokeNs, completeNs, outcome, ...(outcome === "ok" ? { read: { kind: "zero" as const } } : {}), mountEpoch: 1 });
    }
  }
  events.push({ type: "mount", process: "c1", invokeNs: at(9300), completeNs: at(9480), outcome: "ok", epoch: 2, takeover: false });
  events.push({ type: "fault", name: "kill n1 (primary)", detail: "SIGKILL", atNs: at(killMs) });
  events.push({ type: "fault", name: "restart n1", atNs: at(14_000), endNs: at(16_000) });
  events.push({ type: "fault", name: "partition n2", detail: "n2 | n1 n3", atNs: at(18_000), endNs: at(23_000) });
  events.push({ type: "fault", name: "delay 5ms", atNs: at(18_200), endNs: at(19_000) });
  return { scenario: "primary-kill", startNs: T0, events };
}

const rows: ScenarioRow[] = [
  {
    scenario: "primary-kill",
    criterion: "Writes resume within the failover bound after the primary dies; nothing acknowledged is lost.",
    passed: true,
    runs: 3,
    operations: 81_234,
    faults: 6,
    lostAcks: 0,
    staleAcks: 0,
    nonLinearizableReads: 0,
    undecodableReads: 0,
    divergentBlocks: 0,
    fencedWritesAcked: 0,
    fencedWritesVisible: 0,
    failoverMsP50: 1480,
    failoverMsP99: 2210,
    resyncMs: 820,
    resyncBytes: 5 * 1024 * 1024,
  },
  {
    scenario: "zombie-primary",
    criterion: "A cut-off primary acknowledges nothing | after the takeover.",
    passed: false,
    runs: 1,
    operations: 20_000,
    faults: 2,
    lostAcks: 2,
    staleAcks: 0,
    nonLinearizableReads: 3,
    undecodableReads: 0,
    divergentBlocks: 1,
    fencedWritesAcked: 4,
    fencedWritesVisible: 0,
    failoverMsP50: null,
    failoverMsP99: null,
    resyncMs: null,
    resyncBytes: null,
    notes: "planted bug ack-before-quorum\ncaught",
  },
];

const meta = { command: "npm run bench:faults -- --runs 3", date: "2026-11-26", machine: "ci: 2 × cpu, 24 GiB, Node v20.20.2", svgFiles: ["faults-2026-11-26-primary-kill.svg"] };

describe("renderMarkdown", () => {
  const md = renderMarkdown(rows, meta);
  const tableRows = md.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| ---"));

  it("has a header and one row per scenario, with every column", () => {
    expect(tableRows).toHaveLength(3);
    const columns = (l: string): number => l.split(/(?<!\\)\|/).length - 2;
    expect(tableRows.map(columns)).toEqual([16, 16, 16]);
    expect(tableRows[0]).toContain("acked writes lost");
    expect(tableRows[0]).toContain("failover p99");
  });

  it("shows the numbers, a failure and non-zero safety counts so they stand out", () => {
    expect(tableRows[1]).toMatch(/^\| primary-kill \| pass \| 3 \| 81,234 \| 6 \| 0 \|.*\| 1480 ms \| 2210 ms \| 820 ms \| 5\.0 MiB \|$/);
    expect(tableRows[2]).toMatch(/^\| zombie-primary \| \*\*FAIL\*\* \| 1 \| 20,000 \| 2 \| \*\*2\*\* \| 0 \| \*\*3\*\* \|/);
    expect(tableRows[2]).toMatch(/\| – \| – \| – \| – \|$/);
    expect(md).toContain("**1 of 2 scenarios passed** (failed: zombie-primary)");
  });

  it("keeps a pipe or a newline in a criterion or note from breaking the page", () => {
    expect(md).toContain("nothing | after the takeover.");
    expect(md).toContain("Notes: planted bug ack-before-quorum caught");
  });

  it("links each scenario's timeline, and says how it was made", () => {
    expect(md).toContain("![primary-kill: throughput and latency over time, faults marked](faults-2026-11-26-primary-kill.svg)");
    expect(md).not.toContain("![zombie-primary");
    expect(md).toContain("`npm run bench:faults -- --runs 3`");
    expect(md).toContain("ci: 2 × cpu");
  });
});

describe("renderJson", () => {
  it("round-trips the rows", () => {
    const parsed = JSON.parse(renderJson(rows)) as { schema: string; passed: boolean; rows: ScenarioRow[] };
    expect(parsed.rows).toEqual(rows);
    expect(parsed.passed).toBe(false);
    expect(parsed.schema).toBe("replivol.bench.faults/1");
  });
});

describe("formatBytes and bucket widths", () => {
  it("formats bytes in binary units", () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1536), formatBytes(5 * 2 ** 30), formatBytes(null)]).toEqual(["0 B", "1023 B", "1.5 KiB", "5.0 GiB", "–"]);
  });

  it("keeps buckets between 100 and 250 ms for runs up to five minutes", () => {
    expect(bucketMsFor(1000)).toBe(100);
    expect(bucketMsFor(30_000)).toBe(125);
    expect(bucketMsFor(300_000)).toBe(250);
    expect(bucketMsFor(3_600_000) / 1000).toBeLessThanOrEqual(3.6 * 1.02);
  });
});

describe("timelineBuckets", () => {
  it("counts ops per second by completion, ok apart from the rest, and their latency", () => {
    const events: HistoryEvent[] = [];
    for (let i = 0; i < 10; i++) events.push({ type: "read", process: "c1", block: 0, invokeNs: at(i), completeNs: at(i + 1 + i), outcome: "ok", read: { kind: "zero" }, mountEpoch: 1 });
    events.push({ type: "write", process: "c1", block: 0, value: { block: 0, writer: "c1", seq: 1, epoch: 1 }, invokeNs: at(50), completeNs: at(150), outcome: "unknown", mountEpoch: 1 });
    events.push({ type: "fault", name: "kill n1", atNs: at(900) });
    const { bucketMs, buckets } = timelineBuckets({ scenario: "s", startNs: T0, events });
    expect(bucketMs).toBe(100);
    expect(buckets).toHaveLength(9);
    expect(buckets[0]).toMatchObject({ okPerSec: 100, notOkPerSec: 0, p50Ms: 5, maxMs: 10 });
    expect(buckets[1]).toMatchObject({ okPerSec: 0, notOkPerSec: 10 });
    expect(Number.isNaN(buckets[1]?.p50Ms)).toBe(true);
  });
});

describe("renderSvg", () => {
  const t = syntheticTimeline();
  const svg = renderSvg(t);

  it("is one self-contained SVG with axes, units and a legend", () => {
    expect(svg.startsWith("<svg xmlns=\"http://www.w3.org/2000/svg\"")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).not.toMatch(/<script|href=|NaN|Infinity|undefined/);
    for (const text of ["throughput (ops/s)", "latency of acknowledged ops (log)", "time since start (s)", "acknowledged ops/s", "failed or unknown ops/s", "latency p50", "latency p99", "1 s", "1 ms"]) {
      expect(svg).toContain(`>${text}<`);
    }
  });

  it("marks every fault with its name", () => {
    for (const name of ["kill n1 (primary)", "restart n1", "partition n2", "delay 5ms"]) expect(svg).toContain(`</title>${name}</text>`);
    expect(svg).toContain("partition n2: n2 | n1 n3 (18 s to 23 s)");
  });

  it("escapes names that are not XML-safe", () => {
    const odd = renderSvg({ scenario: "a<b>&\"c\"", startNs: T0, events: [{ type: "fault", name: "cut <n1> & <n2>", atNs: at(10) }] });
    expect(odd).toContain("a&lt;b&gt;&amp;&quot;c&quot;");
    expect(odd).toContain("cut &lt;n1&gt; &amp; &lt;n2&gt;");
    expect(odd).not.toMatch(/NaN|Infinity/);
  });

  // rsvg-convert (librsvg2-bin) is not a dependency: where it is installed,
  // prove that a real renderer reads the SVG, and leave a PNG to look at.
  it.skipIf(!existsSync("/usr/bin/rsvg-convert"))("renders with a real SVG renderer", () => {
    const png = execFileSync("/usr/bin/rsvg-convert", ["--format", "png"], { input: svg });
    expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
    if (process.env.FAULTS_REPORT_PNG !== undefined) execFileSync("/usr/bin/rsvg-convert", ["--format", "png", "--output", process.env.FAULTS_REPORT_PNG], { input: svg });
  });
});

describe("writeReport", () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir !== null) await rm(dir, { recursive: true, force: true });
    dir = null;
  });

  it("writes the Markdown, the JSON and one SVG per timeline, linked", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "faults-report-"));
    const out = await writeReport(dir, "2026-11-26", rows, [syntheticTimeline()], { command: "npm run bench:faults", machine: "test" });
    expect((await readdir(dir)).sort()).toEqual(["faults-2026-11-26-primary-kill.svg", "faults-2026-11-26.json", "faults-2026-11-26.md"]);
    expect(await readFile(out.markdown, "utf8")).toContain("](faults-2026-11-26-primary-kill.svg)");
    expect(JSON.parse(await readFile(out.json, "utf8"))).toMatchObject({ rows });
  });
});

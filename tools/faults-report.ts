/**
 * The fault-injection benchmark's report: a Markdown table with a row per
 * scenario, one SVG timeline per scenario (throughput and latency over time,
 * every fault marked), and the same rows as JSON for machines.
 *
 * Rendering is pure (strings in, strings out), so it is tested without
 * files; only writeReport touches the disk. The SVG is self-contained (no
 * scripts, no external fonts or styles) so it shows the same in a browser,
 * on GitHub and through rsvg-convert.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, hostname, totalmem } from "node:os";
import * as path from "node:path";
import type { HistoryEvent } from "../bench/faults/history.js";

export interface ScenarioRow {
  scenario: string;
  criterion: string;
  passed: boolean;
  runs: number;
  operations: number;
  faults: number;
  lostAcks: number;
  staleAcks: number;
  nonLinearizableReads: number;
  undecodableReads: number;
  divergentBlocks: number;
  fencedWritesAcked: number;
  fencedWritesVisible: number;
  failoverMsP50: number | null;
  failoverMsP99: number | null;
  resyncMs: number | null;
  resyncBytes: number | null;
  notes?: string;
}

export interface Timeline {
  scenario: string;
  startNs: bigint;
  events: readonly HistoryEvent[];
}

export interface ReportMeta {
  readonly command: string;
  readonly date: string;
  readonly machine: string;
  readonly svgFiles: readonly string[];
}

// ---------------------------------------------------------------- Markdown

/** A list item: a newline would end it. */
function oneLine(s: string): string {
  return s.replace(/\s*\r?\n\s*/g, " ");
}

/** A table cell: pipes and newlines would break the row. */
function cell(s: string): string {
  return oneLine(s).replace(/\|/g, "\\|");
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** A safety count: zero is the only good value, so anything else is bold. */
function bad(n: number): string {
  return n === 0 ? "0" : `**${count(n)}**`;
}

function millis(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "–";
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** The SVG file among `svgFiles` that belongs to a scenario (run.ts names them faults-<date>-<scenario>.svg). */
function svgOf(scenario: string, svgFiles: readonly string[]): string | undefined {
  return svgFiles.find((f) => path.basename(f, ".svg").endsWith(`-${scenario}`)) ?? svgFiles.find((f) => f.includes(scenario));
}

export function renderMarkdown(rows: readonly ScenarioRow[], meta: ReportMeta): string {
  const passed = rows.filter((r) => r.passed).length;
  const out: string[] = [];
  out.push(`# Fault-injection benchmarks, ${meta.date}`, "");
  out.push(`- Command: \`${meta.command}\``);
  out.push(`- Machine: ${meta.machine}`);
  out.push(`- Result: **${passed} of ${rows.length} scenarios passed**${passed === rows.length ? "" : ` (failed: ${rows.filter((r) => !r.passed).map((r) => r.scenario).join(", ")})`}`, "");
  out.push(
    "| scenario | result | runs | operations | faults | acked writes lost | stale acks | non-linearizable reads | undecodable reads | divergent blocks | fenced writes acked | fenced writes visible | failover p50 | failover p99 | resync time | resync bytes |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const r of rows) {
    out.push(
      `| ${cell(r.scenario)} | ${r.passed ? "pass" : "**FAIL**"} | ${r.runs} | ${count(r.operations)} | ${count(r.faults)} | ${bad(r.lostAcks)} | ${bad(r.staleAcks)} | ${bad(r.nonLinearizableReads)} | ${bad(r.undecodableReads)} | ${bad(r.divergentBlocks)} | ${bad(r.fencedWritesAcked)} | ${bad(r.fencedWritesVisible)} | ${millis(r.failoverMsP50)} | ${millis(r.failoverMsP99)} | ${millis(r.resyncMs)} | ${formatBytes(r.resyncBytes)} |`,
    );
  }
  out.push("", "## Scenarios", "");
  for (const r of rows) {
    out.push(oneLine(`- **${r.scenario}** (${r.passed ? "pass" : "FAIL"}): ${r.criterion}${r.notes !== undefined && r.notes !== "" ? ` Notes: ${r.notes}` : ""}`));
  }
  const timelines = rows.map((r) => ({ r, file: svgOf(r.scenario, meta.svgFiles) })).filter((x) => x.file !== undefined);
  if (timelines.length > 0) {
    out.push("", "## Timelines", "", "Throughput (operations completed per second, acknowledged and not) and latency of acknowledged operations over one run of each scenario; shaded bands and lines are the injected faults.", "");
    for (const { r, file } of timelines) out.push(`### ${r.scenario}`, "", `![${r.scenario}: throughput and latency over time, faults marked](${encodeURI(file as string)})`, "");
  }
  out.push(
    "",
    "## What the columns count",
    "",
    "- **acked writes lost**: acknowledged writes that the last read of their block (the verification read after healing) shows replaced by an older value or zeros (P1).",
    "- **stale acks**: acknowledged writes that some read begun after the acknowledgement did not see (it returned an older value), though later reads did (P3).",
    "- **non-linearizable reads**: reads that no linearization of their block's history explains: a value read after a newer one was in place, a value never written or whose write failed, a value read before its write began (P3).",
    "- **undecodable reads**: reads that returned bytes no writer wrote there: torn, mixed, corrupt or misdirected blocks (P5).",
    "- **divergent blocks**: blocks whose checksums differ between replicas once resync ended (P4): the nodes' region digests (RegionChecksums) first, then each differing region block by block (BlockChecksums).",
    "- **fenced writes acked / visible**: writes of a mount older than one that had returned, acknowledged after it, or issued after it and read back (P2).",
    "- **failover**: from a fault that hit the primary to the first acknowledged write begun after it. **resync**: the longest region resync of the runs, its own time and the bytes it sent, as its primary reports them (ReplicaStatus).",
    "",
  );
  return out.join("\n");
}

export function renderJson(rows: readonly ScenarioRow[]): string {
  return `${JSON.stringify({ schema: "replivol.bench.faults/1", passed: rows.every((r) => r.passed), rows }, null, 2)}\n`;
}

// --------------------------------------------------------------------- SVG

const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
const COLOR = {
  ok: "#2b8a3e",
  okFill: "#8ce99a",
  failed: "#e03131",
  failedFill: "#ffa8a8",
  p50: "#1971c2",
  p99: "#f08c00",
  max: "#868e96",
  axis: "#495057",
  grid: "#e9ecef",
  text: "#212529",
  mount: "#7048e8",
} as const;
/** Fault bands cycle through these, so that overlapping faults stay apart. */
const FAULT_COLORS = ["#fa5252", "#be4bdb", "#4c6ef5", "#15aabf", "#fab005", "#82c91e", "#fd7e14"] as const;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmt(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

/** Round tick steps (1, 2, 5 times a power of ten) for about `target` ticks over [0, max]. */
function ticks(max: number, target: number): number[] {
  if (!(max > 0)) return [0];
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

function secondsLabel(s: number): string {
  return Number.isInteger(s) ? `${s}` : s.toFixed(1);
}

function latencyLabel(ms: number): string {
  if (ms >= 1000) return `${ms / 1000} s`;
  if (ms >= 1) return `${ms} ms`;
  return `${ms * 1000} µs`;
}

interface Bucket {
  ok: number;
  notOk: number;
  latenciesMs: number[];
}

/** The bucket width: 100-250 ms, wider only for runs long enough to need more than 1200 buckets. */
export function bucketMsFor(durationMs: number): number {
  const target = Math.round(Math.min(250, Math.max(100, durationMs / 240)) / 5) * 5;
  return Math.max(target, Math.ceil(durationMs / 1200 / 50) * 50);
}

/** One bucket of a timeline: operations completed in it per second, and latencies (ms) of the acknowledged ones. */
export interface TimelineBucket {
  readonly startMs: number;
  readonly okPerSec: number;
  readonly notOkPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Reads and writes bucketed by completion time since `startNs`; NaN latencies where a bucket acknowledged nothing. */
export function timelineBuckets(t: Timeline): { bucketMs: number; endMs: number; buckets: TimelineBucket[] } {
  const ms = (ns: bigint): number => Number(ns - t.startNs) / 1e6;
  let endMs = 1;
  for (const e of t.events) endMs = Math.max(endMs, e.type === "fault" ? ms(e.endNs ?? e.atNs) : ms(e.completeNs));
  const bucketMs = bucketMsFor(endMs);
  const raw: Bucket[] = Array.from({ length: Math.max(1, Math.ceil(endMs / bucketMs)) }, () => ({ ok: 0, notOk: 0, latenciesMs: [] }));
  for (const e of t.events) {
    if (e.type !== "read" && e.type !== "write") continue;
    const at = ms(e.completeNs);
    if (at < 0) continue;
    const b = raw[Math.min(raw.length - 1, Math.floor(at / bucketMs))] as Bucket;
    if (e.outcome === "ok") {
      b.ok++;
      b.latenciesMs.push(Number(e.completeNs - e.invokeNs) / 1e6);
    } else {
      b.notOk++;
    }
  }
  const perSec = 1000 / bucketMs;
  const buckets = raw.map((b, i) => {
    const sorted = b.latenciesMs.sort((x, y) => x - y);
    return { startMs: i * bucketMs, okPerSec: b.ok * perSec, notOkPerSec: b.notOk * perSec, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.at(-1) ?? NaN };
  });
  return { bucketMs, endMs, buckets };
}

export function renderSvg(t: Timeline, opts?: { width?: number; height?: number }): string {
  const width = opts?.width ?? 1100;
  const height = opts?.height ?? 620;
  const ms = (ns: bigint): number => Number(ns - t.startNs) / 1e6;
  const ops = t.events.filter((e) => e.type === "read" || e.type === "write");
  const faults = t.events.filter((e): e is Extract<HistoryEvent, { type: "fault" }> => e.type === "fault");
  const mounts = t.events.filter((e): e is Extract<HistoryEvent, { type: "mount" }> => e.type === "mount" && e.outcome === "ok");
  const { bucketMs, endMs, buckets } = timelineBuckets(t);
  const series = buckets.map((b) => ({ ok: b.okPerSec, notOk: b.notOkPerSec, p50: b.p50Ms, p99: b.p99Ms, max: b.maxMs }));

  // Layout: title, fault label lanes, throughput panel, latency panel, axis, legend.
  const left = 72;
  const right = width - 24;
  const plotW = right - left;
  const x = (tMs: number): number => left + (Math.max(0, Math.min(endMs, tMs)) / endMs) * plotW;

  // Fault labels go in lanes so that neighbours do not overprint.
  const charW = 6.2;
  const lanes: number[] = [];
  const labelled = [...faults]
    .sort((a, b) => (a.atNs < b.atNs ? -1 : a.atNs > b.atNs ? 1 : 0))
    .map((f, i) => {
      const x0 = x(ms(f.atNs));
      const text = f.name;
      const w = text.length * charW + 8;
      let lane = lanes.findIndex((endX) => endX < x0);
      if (lane < 0 || lane > 3) {
        lane = lanes.length <= 3 ? lanes.length : lanes.indexOf(Math.min(...lanes));
      }
      lanes[lane] = x0 + w;
      return { f, i, lane, x0, text, color: FAULT_COLORS[i % FAULT_COLORS.length] as string };
    });
  const laneCount = Math.max(1, Math.min(4, lanes.length));
  const laneH = 15;
  const titleH = 30;
  const lanesTop = titleH + 6;
  const plotTop = lanesTop + laneCount * laneH + 6;
  const legendH = 34;
  const axisH = 36;
  const gap = 26;
  const panelsH = height - plotTop - axisH - legendH - gap;
  const thrH = Math.round(panelsH * 0.45);
  const latH = panelsH - thrH;
  const thrTop = plotTop;
  const thrBottom = thrTop + thrH;
  const latTop = thrBottom + gap;
  const latBottom = latTop + latH;

  const maxRate = Math.max(1, ...series.map((s) => s.ok + s.notOk));
  const rateTicks = ticks(maxRate * 1.05, 4);
  const rateTop = rateTicks.at(-1) as number;
  const yRate = (v: number): number => thrBottom - (v / rateTop) * thrH;

  const lats = series.flatMap((s) => [s.p50, s.p99, s.max]).filter((v) => Number.isFinite(v) && v > 0);
  const latMin = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...lats, 1))));
  const latMax = 10 ** Math.ceil(Math.log10(Math.max(latMin * 10, ...lats)));
  const yLat = (v: number): number => latBottom - ((Math.log10(Math.max(latMin, v)) - Math.log10(latMin)) / (Math.log10(latMax) - Math.log10(latMin))) * latH;

  const s: string[] = [];
  s.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="11" fill="${COLOR.text}">`,
    `<title>${esc(t.scenario)}: throughput and latency over time, faults marked</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="20" font-size="15" font-weight="bold">${esc(t.scenario)}</text>`,
    `<text x="${right}" y="20" text-anchor="end" fill="${COLOR.axis}">${count(ops.length)} operations, ${faults.length} fault${faults.length === 1 ? "" : "s"}, ${fmt(endMs / 1000)} s, ${bucketMs} ms buckets</text>`,
  );

  // Fault bands across both panels, under the data.
  for (const l of labelled) {
    const x1 = l.f.endNs === undefined ? l.x0 : x(ms(l.f.endNs));
    const labelY = lanesTop + l.lane * laneH + 11;
    if (x1 - l.x0 >= 1.5) {
      for (const [top, bottom] of [
        [thrTop, thrBottom],
        [latTop, latBottom],
      ] as const) {
        s.push(`<rect x="${fmt(l.x0)}" y="${top}" width="${fmt(x1 - l.x0)}" height="${bottom - top}" fill="${l.color}" fill-opacity="0.10"/>`);
      }
    }
    s.push(`<line x1="${fmt(l.x0)}" y1="${labelY + 3}" x2="${fmt(l.x0)}" y2="${latBottom}" stroke="${l.color}" stroke-width="1.2" stroke-dasharray="4 3"/>`);
    if (l.f.endNs !== undefined && x1 - l.x0 >= 1.5) s.push(`<line x1="${fmt(x1)}" y1="${thrTop}" x2="${fmt(x1)}" y2="${latBottom}" stroke="${l.color}" stroke-width="0.8" stroke-opacity="0.6"/>`);
    const detail = l.f.detail === undefined ? "" : `: ${l.f.detail}`;
    const span = l.f.endNs === undefined ? `at ${fmt(ms(l.f.atNs) / 1000)} s` : `${fmt(ms(l.f.atNs) / 1000)} s to ${fmt(ms(l.f.endNs) / 1000)} s`;
    s.push(`<text x="${fmt(l.x0 + 3)}" y="${labelY}" fill="${l.color}" font-weight="bold"><title>${esc(`${l.f.name}${detail} (${span})`)}</title>${esc(l.text)}</text>`);
  }

  // Throughput panel.
  s.push(`<text x="14" y="${(thrTop + thrBottom) / 2}" transform="rotate(-90 14 ${(thrTop + thrBottom) / 2})" text-anchor="middle" fill="${COLOR.axis}">throughput (ops/s)</text>`);
  for (const v of rateTicks) {
    const y = fmt(yRate(v));
    s.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="${COLOR.grid}"/>`, `<text x="${left - 6}" y="${y}" dy="4" text-anchor="end" fill="${COLOR.axis}">${count(v)}</text>`);
  }
  const bx = (i: number): number => x(i * bucketMs);
  const area = (top: (i: number) => number, bottom: (i: number) => number): string => {
    // Steps, not slopes: a bucket is a count over its whole width.
    const up: string[] = [];
    const down: string[] = [];
    series.forEach((_, i) => {
      up.push(`${fmt(bx(i))},${fmt(top(i))}`, `${fmt(bx(i + 1))},${fmt(top(i))}`);
      down.push(`${fmt(bx(i + 1))},${fmt(bottom(i))}`, `${fmt(bx(i))},${fmt(bottom(i))}`);
    });
    return [...up, ...down.reverse()].join(" ");
  };
  const okTop = (i: number): number => yRate((series[i] as { ok: number }).ok);
  const allTop = (i: number): number => yRate((series[i] as { ok: number }).ok + (series[i] as { notOk: number }).notOk);
  s.push(`<polygon points="${area(okTop, () => thrBottom)}" fill="${COLOR.okFill}" stroke="${COLOR.ok}" stroke-width="0.8"/>`);
  if (series.some((v) => v.notOk > 0)) s.push(`<polygon points="${area(allTop, okTop)}" fill="${COLOR.failedFill}" fill-opacity="0.9"/>`);
  for (const m of mounts) {
    const mx = fmt(x(ms(m.completeNs)));
    s.push(`<path d="M${mx},${thrBottom} l-4,7 h8 z" fill="${COLOR.mount}"><title>${esc(`mount of epoch ${m.epoch ?? "?"} by ${m.process}${m.takeover ? " (takeover)" : ""} at ${fmt(ms(m.completeNs) / 1000)} s`)}</title></path>`);
  }
  s.push(`<rect x="${left}" y="${thrTop}" width="${plotW}" height="${thrH}" fill="none" stroke="${COLOR.axis}" stroke-width="0.8"/>`);

  // Latency panel, log scale: a failover's seconds and a healthy write's milliseconds on one axis.
  s.push(`<text x="14" y="${(latTop + latBottom) / 2}" transform="rotate(-90 14 ${(latTop + latBottom) / 2})" text-anchor="middle" fill="${COLOR.axis}">latency of acknowledged ops (log)</text>`);
  for (let decade = latMin; decade <= latMax * 1.0001; decade *= 10) {
    const y = fmt(yLat(decade));
    s.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="${COLOR.grid}"/>`, `<text x="${left - 6}" y="${y}" dy="4" text-anchor="end" fill="${COLOR.axis}">${latencyLabel(Number(decade.toPrecision(3)))}</text>`);
  }
  const line = (pick: (v: (typeof series)[number]) => number): string => {
    const parts: string[] = [];
    let pen = false;
    series.forEach((v, i) => {
      const val = pick(v);
      if (!Number.isFinite(val)) {
        pen = false;
        return;
      }
      const y = fmt(yLat(val));
      parts.push(`${pen ? "L" : "M"}${fmt(bx(i))},${y}L${fmt(bx(i + 1))},${y}`);
      pen = true;
    });
    return parts.join("");
  };
  for (const [i, v] of series.entries()) {
    if (Number.isFinite(v.max)) s.push(`<circle cx="${fmt((bx(i) + bx(i + 1)) / 2)}" cy="${fmt(yLat(v.max))}" r="1.4" fill="${COLOR.max}"/>`);
  }
  s.push(`<path d="${line((v) => v.p99)}" fill="none" stroke="${COLOR.p99}" stroke-width="1.4"/>`);
  s.push(`<path d="${line((v) => v.p50)}" fill="none" stroke="${COLOR.p50}" stroke-width="1.6"/>`);
  s.push(`<rect x="${left}" y="${latTop}" width="${plotW}" height="${latH}" fill="none" stroke="${COLOR.axis}" stroke-width="0.8"/>`);

  // Time axis, shared.
  for (const sec of ticks(endMs / 1000, 10)) {
    const tx = fmt(x(sec * 1000));
    s.push(
      `<line x1="${tx}" y1="${thrBottom}" x2="${tx}" y2="${thrBottom + 3}" stroke="${COLOR.axis}"/>`,
      `<line x1="${tx}" y1="${latBottom}" x2="${tx}" y2="${latBottom + 4}" stroke="${COLOR.axis}"/>`,
      `<text x="${tx}" y="${latBottom + 16}" text-anchor="middle" fill="${COLOR.axis}">${secondsLabel(sec)}</text>`,
    );
  }
  s.push(`<text x="${(left + right) / 2}" y="${latBottom + 31}" text-anchor="middle" fill="${COLOR.axis}">time since start (s)</text>`);

  // Legend.
  const ly = height - 12;
  let lx = left;
  const legend = (swatch: string, label: string): void => {
    s.push(swatch.replace(/LX/g, fmt(lx)).replace(/LY/g, fmt(ly)), `<text x="${fmt(lx + 20)}" y="${ly}" dy="0">${esc(label)}</text>`);
    lx += 28 + label.length * charW;
  };
  legend(`<rect x="LX" y="${ly - 9}" width="14" height="10" fill="${COLOR.okFill}" stroke="${COLOR.ok}"/>`, "acknowledged ops/s");
  legend(`<rect x="LX" y="${ly - 9}" width="14" height="10" fill="${COLOR.failedFill}" stroke="${COLOR.failed}"/>`, "failed or unknown ops/s");
  legend(`<line x1="LX" y1="${ly - 4}" x2="${fmt(lx + 14)}" y2="${ly - 4}" stroke="${COLOR.p50}" stroke-width="2"/>`, "latency p50");
  legend(`<line x1="LX" y1="${ly - 4}" x2="${fmt(lx + 14)}" y2="${ly - 4}" stroke="${COLOR.p99}" stroke-width="2"/>`, "latency p99");
  legend(`<circle cx="${fmt(lx + 7)}" cy="${ly - 4}" r="2" fill="${COLOR.max}"/>`, "latency max");
  legend(`<path d="M${fmt(lx + 7)},${ly - 9} l-5,9 h10 z" fill="${COLOR.mount}"/>`, "mount");
  legend(`<line x1="${fmt(lx + 7)}" y1="${ly - 10}" x2="${fmt(lx + 7)}" y2="${ly + 1}" stroke="${FAULT_COLORS[0]}" stroke-width="1.2" stroke-dasharray="3 2"/><rect x="${fmt(lx + 8)}" y="${ly - 10}" width="6" height="11" fill="${FAULT_COLORS[0]}" fill-opacity="0.15"/>`, "fault (start, duration)");
  s.push("</svg>");
  return `${s.join("\n")}\n`;
}

// ------------------------------------------------------------------- files

/** The file name a scenario's timeline gets beside the report. */
export function svgFileName(date: string, scenario: string): string {
  return `faults-${date}-${scenario.replace(/[^A-Za-z0-9._-]/g, "_")}.svg`;
}

/**
 * Writes DIR/faults-<date>.md, DIR/faults-<date>.json and one SVG per
 * timeline beside them; returns the paths written.
 */
export async function writeReport(
  dir: string,
  date: string,
  rows: readonly ScenarioRow[],
  timelines: readonly Timeline[],
  meta?: { readonly command?: string; readonly machine?: string },
): Promise<{ markdown: string; json: string; svgs: string[] }> {
  await mkdir(dir, { recursive: true });
  const svgFiles: string[] = [];
  for (const t of timelines) {
    const file = svgFileName(date, t.scenario);
    await writeFile(path.join(dir, file), renderSvg(t));
    svgFiles.push(file);
  }
  const machine = meta?.machine ?? `${hostname()}: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const markdown = path.join(dir, `faults-${date}.md`);
  await writeFile(markdown, renderMarkdown(rows, { command: meta?.command ?? "npm run bench:faults", date, machine, svgFiles }));
  const json = path.join(dir, `faults-${date}.json`);
  await writeFile(json, renderJson(rows));
  return { markdown, json, svgs: svgFiles.map((f) => path.join(dir, f)) };
}

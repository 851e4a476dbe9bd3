/** `--watch` of volctl's long-running verbs: poll a volume's info and draw progress until done. */
import { MultiBar, Presets } from "cli-progress";
import { setTimeout as sleep } from "node:timers/promises";
import type { Cluster, VolumeInfo } from "../client/index.js";
import { EXIT } from "./context.js";

const POLL_MS = 500;

/** One progress bar: a replica's. */
export interface BarView {
  readonly key: string;
  readonly value: number;
  readonly total: number;
  readonly payload: Readonly<Record<string, string>>;
}

export interface WatchOptions {
  readonly timeoutMs: number;
  /** Scripts: no bars, no lines. */
  readonly json: boolean;
  /** cli-progress format of each bar ({bar}, {value}, {total}, {percentage} and the payload's keys). */
  readonly format: string;
  readonly done: (v: VolumeInfo) => boolean;
  readonly bars: (v: VolumeInfo) => readonly BarView[];
  /** Off a terminal: a line printed to stderr whenever it changes. */
  readonly text: (v: VolumeInfo) => string;
}

/** Polls until `done`, drawing as it goes; at the deadline sets exit code "unavailable". Returns the last info. */
export async function watchVolume(cluster: Cluster, name: string, first: VolumeInfo, o: WatchOptions): Promise<VolumeInfo> {
  const tty = process.stderr.isTTY && !o.json;
  const bars = tty ? new MultiBar({ format: o.format, hideCursor: true, clearOnComplete: false }, Presets.shades_classic) : null;
  const barOf = new Map<string, ReturnType<MultiBar["create"]>>();
  let lastLine = "";
  let v = first;
  const until = Date.now() + o.timeoutMs;
  try {
    for (;;) {
      if (bars !== null) {
        for (const b of o.bars(v)) {
          const total = Math.max(1, b.total);
          const bar = barOf.get(b.key) ?? bars.create(total, 0, b.payload);
          barOf.set(b.key, bar);
          bar.setTotal(total);
          bar.update(b.value, b.payload);
        }
      } else if (!o.json) {
        const line = o.text(v);
        if (line !== lastLine) process.stderr.write(`${line}\n`);
        lastLine = line;
      }
      if (o.done(v)) return v;
      if (Date.now() >= until) {
        process.exitCode = EXIT.unavailable;
        return v;
      }
      await sleep(POLL_MS);
      v = await cluster.volumeInfo(name);
    }
  } finally {
    bars?.stop();
  }
}

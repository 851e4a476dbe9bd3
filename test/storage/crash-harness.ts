/**
 * Kills a writing child process with SIGKILL at random moments and checks,
 * after each kill, that every acknowledged record is in the log (or already
 * in the block data) and that every block verifies and holds what the
 * workload wrote. Used by crash.test.ts (a few rounds) and crash-cli.ts.
 */
import * as fs from "node:fs/promises";
import { asLsn } from "../../src/core/types.js";
import { openFileReplicaStore } from "../../src/storage/data-dir.js";
import { startTsxChild, type TestChild } from "./child-process.js";
import { CRASH_BLOCK_COUNT, CRASH_VOLUME, crashRecord, crashRecordShape, crashStoreOptions } from "./crash-workload.js";
import { blockBytes, tempDir } from "./fixtures.js";

export interface CrashRunResult {
  readonly rounds: number;
  readonly acknowledged: number;
  readonly head: number;
  readonly unsureRounds: number;
}

/** A small seeded generator, so a failing run can be repeated with its seed. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

export async function runCrashRounds(opts: { rounds: number; seed: number; log?: (line: string) => void }): Promise<CrashRunResult> {
  const rand = random(opts.seed);
  const dir = await tempDir("replivol-crash-");
  let child: TestChild | null = null;
  let acknowledged = 0;
  let head = 0;
  let unsureRounds = 0;
  try {
    for (let round = 0; round < opts.rounds; round++) {
      let maxAcked = 0;
      const started = startTsxChild("crash-child.ts", round === 0 ? [dir, "create"] : [dir], (line) => {
        if (line.startsWith("ack ")) {
          const lsn = Number(line.slice(4));
          if (lsn > maxAcked) maxAcked = lsn;
          acknowledged++;
        }
      });
      child = started;
      await started.waitForLine((l) => l.startsWith("ready "), 30_000);
      // Kill at a random moment: between 20 and 400 ms into its writing.
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(rand() * 380)));
      await started.kill();
      child = null;
      const exit = await started.exited;
      if (exit.signal !== "SIGKILL") throw new Error(`Round ${round}: the child ended on its own (${JSON.stringify(exit)}): ${started.lines.slice(-3).join(" | ")}`);

      const store = await openFileReplicaStore(dir, CRASH_VOLUME, crashStoreOptions);
      try {
        head = store.head().lsn;
        const cut = store.recoveryCut();
        if (cut !== null) {
          unsureRounds++;
          opts.log?.(`round ${round + 1}: recovery cut the log: ${cut}`);
        }
        if (head < maxAcked) throw new Error(`Round ${round}: record ${maxAcked} was acknowledged but the log ends at ${head}`);
        const retained = await store.readLog(store.logStartLsn(), asLsn(head));
        if (retained === null) throw new Error(`Round ${round}: the retained log ${store.logStartLsn()}..${head} cannot be read`);
        for (const r of retained) {
          const want = crashRecord(r.lsn);
          const same = r.kind === want.kind && r.block === want.block && r.blockCount === want.blockCount && Buffer.compare(Buffer.from(r.data ?? []), Buffer.from(want.data ?? [])) === 0;
          if (!same) throw new Error(`Round ${round}: log record ${r.lsn} differs from what was appended`);
        }
        await store.applyThrough(asLsn(head));
        // What each block must hold: the last record through head that touched it.
        const lastWriter = new Array<number>(CRASH_BLOCK_COUNT).fill(0);
        for (let lsn = 1; lsn <= head; lsn++) {
          const { kind, block, blockCount } = crashRecordShape(lsn);
          for (let b = block; b < block + blockCount; b++) lastWriter[b] = kind === "write" ? lsn : 0;
        }
        for (let b = 0; b < CRASH_BLOCK_COUNT; b += 64) {
          const bytes = Buffer.from(await store.readBlocks(b, 64)); // verifies every block's checksum
          for (let i = 0; i < 64; i++) {
            const writer = lastWriter[b + i] ?? 0;
            const want = writer === 0 ? Buffer.alloc(4096) : blockBytes(writer, b + i);
            if (!bytes.subarray(i * 4096, (i + 1) * 4096).equals(want)) {
              throw new Error(`Round ${round}: block ${b + i} does not hold record ${writer}'s bytes`);
            }
          }
        }
        await store.checkpoint();
      } finally {
        await store.close();
      }
      opts.log?.(`round ${round + 1}/${opts.rounds}: ${maxAcked === 0 ? "no" : `through lsn ${maxAcked}`} acknowledged, head ${head} after recovery`);
    }
  } finally {
    await child?.kill();
    await fs.rm(dir, { recursive: true, force: true });
  }
  return { rounds: opts.rounds, acknowledged, head, unsureRounds };
}

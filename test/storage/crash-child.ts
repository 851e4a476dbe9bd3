/**
 * Child of the crash test: appends the crash workload with 16 records in
 * flight, printing "ack <lsn>" once each append resolved (stdout to a pipe is
 * synchronous on Linux, so a printed ack was acknowledged). It applies,
 * writes the superblock and checkpoints as it goes (a checkpoint's write
 * overlapping the appends and applies after it), until it is killed.
 */
import { asLsn } from "../../src/core/types.js";
import { openFileReplicaStore } from "../../src/storage/data-dir.js";
import { CRASH_VOLUME, crashConfig, crashRecord, crashStoreOptions } from "./crash-workload.js";

const dir = process.argv[2];
if (dir === undefined) throw new Error("usage: crash-child.ts <dataDir>");
const create = process.argv[3] === "create";
const store = await openFileReplicaStore(dir, CRASH_VOLUME, create ? { ...crashStoreOptions, create: crashConfig } : crashStoreOptions);
process.stdout.write(`ready ${store.head().lsn}\n`);

const inFlightMax = 16;
let next = store.head().lsn + 1;
const inFlight = new Set<Promise<void>>();
let checkpointing: Promise<void> | null = null;
for (let round = 0; ; round++) {
  while (inFlight.size < inFlightMax) {
    const lsn = next++;
    const p: Promise<void> = store.appendLog([crashRecord(lsn)]).then(() => {
      process.stdout.write(`ack ${lsn}\n`);
      inFlight.delete(p);
    });
    inFlight.add(p);
  }
  await Promise.race(inFlight);
  // This replica is the whole volume, so durable here is committed.
  if (round % 50 === 0) await store.writeSuperblock({ commitLsn: store.head().lsn });
  if (round % 20 === 0) await store.applyThrough(store.head().lsn === 0 ? asLsn(0) : store.head().lsn);
  // Not awaited (one at a time): appends and applies go on while it writes, as in a node, so kills land there too.
  if (round % 120 === 0 && checkpointing === null) {
    checkpointing = store.checkpoint().then(
      () => {
        checkpointing = null;
      },
      (err: unknown) => {
        process.stderr.write(`checkpoint failed: ${String(err)}\n`);
        process.exit(3);
      },
    );
  }
}

/**
 * Child process for the lock test: takes the data directory's lock, prints
 * "locked <pid>" and holds it until killed, or prints "error <code> <message>"
 * and exits 1.
 */
import { VolumeError } from "../../src/core/errors.js";
import { openDataDir } from "../../src/storage/data-dir.js";

const dir = process.argv[2];
if (dir === undefined) throw new Error("usage: lock-child.ts <dataDir>");
try {
  await openDataDir(dir);
  process.stdout.write(`locked ${process.pid}\n`);
  setInterval(() => undefined, 60_000);
} catch (err) {
  process.stdout.write(`error ${err instanceof VolumeError ? err.code : "?"} ${(err as Error).message}\n`);
  process.exit(1);
}

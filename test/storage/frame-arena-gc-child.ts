/**
 * Child of frame-arena.test.ts, run with --expose-gc: carves 64 slabs' worth
 * of frames, releases none, drops every reference to them, collects
 * garbage, and prints how many slabs were collected. The arena must not
 * keep slabs alive.
 */
import { FrameArena } from "../../src/storage/log-frame.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");
const SLAB = 64 * 1024;
const arena = new FrameArena(SLAB);
let collected = 0;
const registry = new FinalizationRegistry(() => {
  collected++;
});
(() => {
  let last: Buffer | null = null;
  for (let i = 0; i < 64 * 4; i++) {
    const slab = arena.reserve(SLAB / 4, 1);
    if (slab !== last) registry.register(slab, i);
    last = slab;
  }
})();
// The arena may keep its current slab; every other one must go.
for (let round = 0; round < 20 && collected < 63; round++) {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 10));
}
process.stdout.write(`collected ${collected}\n`);

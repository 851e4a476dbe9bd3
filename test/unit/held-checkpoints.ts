/** A ReplicaStore whose checkpoints wait for the test's word: for tests of what a driver does while one writes. */
import type { ReplicaStore } from "../../src/storage/replica-store.js";

/**
 * `store`, each checkpoint of which first pushes a release function onto
 * `releases` and waits for it to be called, then runs; `began` counts the
 * checkpoints asked for so far.
 */
export function holdingCheckpoints(store: ReplicaStore, releases: (() => void)[]): { store: ReplicaStore; began: () => number } {
  let began = 0;
  const held = new Proxy(store, {
    get(target, key, receiver): unknown {
      if (key === "checkpoint") {
        return async (): Promise<void> => {
          began++;
          await new Promise<void>((resolve) => releases.push(resolve));
          await target.checkpoint();
        };
      }
      const v: unknown = Reflect.get(target, key, receiver);
      return typeof v === "function" ? (v as (...args: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: held, began: () => began };
}

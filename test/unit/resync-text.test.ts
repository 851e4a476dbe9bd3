import { describe, expect, it } from "vitest";
import type { ReplicaInfo } from "../../src/client/index.js";
import { resyncText } from "../../src/cli/commands/info.js";

const base: ReplicaInfo = { node: "n3", up: true, state: "resyncing", consistent: false, promisedEpoch: 4, head: { epoch: 4, lsn: 10 }, commitLsn: 9, lagRecords: 0, primary: false, resync: null, lastResync: null, scrub: null, corruptFound: 0, divergentFound: 0, repairsDone: 0, repairsFailed: 0 };

describe("volctl info's resync column", () => {
  it.each([
    ["nothing", base, "-"],
    ["a comparison", { ...base, resync: { regionsCopied: 0, regionsLeft: null, bytesCopied: 0, elapsedMs: 10, rate: 0, etaMs: null } }, "comparing region versions"],
    [
      "progress, rate and ETA",
      { ...base, resync: { regionsCopied: 3, regionsLeft: 9, bytesCopied: 3 * 1048576, elapsedMs: 1500, rate: 2 * 1048576, etaMs: 4500 } },
      "25% (3/12 regions, 3 MiB) at 2 MiB/s, ETA 5 s",
    ],
    ["the last resync", { ...base, state: "in-sync", lastResync: { regions: 22, bytes: 22 * 1048576, ms: 2345 } }, "last: 22 regions, 22 MiB in 2.3 s"],
  ])("shows %s", (_what, r, text) => {
    expect(resyncText(r)).toBe(text);
  });
});

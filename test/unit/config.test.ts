import { describe, expect, it } from "vitest";
import { configAfter, configMembers, configRecordFits, decodeConfig, encodeConfig, isVoter, replacedSet, voterSets } from "../../src/core/config.js";
import { asNodeId, type VolumeConfig } from "../../src/core/types.js";

const n = asNodeId;
const base: VolumeConfig = { name: "v", blockSize: 4096, blockCount: 64, replicas: [n("n1"), n("n2"), n("n3")], configVersion: 1 };
const learner: VolumeConfig = { ...base, configVersion: 2, replacement: { from: n("n3"), to: n("n4") } };
const joint: VolumeConfig = { ...base, configVersion: 3, replicas: replacedSet(base.replicas, n("n3"), n("n4")), previousReplicas: base.replicas };
const next: VolumeConfig = { ...base, configVersion: 4, replicas: joint.replicas };

describe("volume configurations", () => {
  it("vote, and are sent records, as a replacement moves on", () => {
    expect(voterSets(base)).toEqual([base.replicas]);
    expect(voterSets(learner)).toEqual([base.replicas]);
    expect(isVoter(learner, n("n4"))).toBe(false);
    expect(configMembers(learner).sort()).toEqual(["n1", "n2", "n3", "n4"]);
    expect(voterSets(joint)).toEqual([base.replicas, ["n1", "n2", "n4"]]);
    expect(isVoter(joint, n("n3"))).toBe(true);
    expect(isVoter(joint, n("n4"))).toBe(true);
    expect(isVoter(next, n("n3"))).toBe(false);
    expect(configMembers(next).sort()).toEqual(["n1", "n2", "n4"]);
  });

  it("round-trip through a config record, and anything else is refused", () => {
    for (const c of [base, learner, joint, next]) expect(decodeConfig(encodeConfig(c))).toEqual(c);
    const bytes = (x: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(x));
    expect(() => decodeConfig(new Uint8Array(0))).toThrow();
    expect(() => decodeConfig(new TextEncoder().encode("{"))).toThrow();
    expect(() => decodeConfig(bytes({ ...base, replicas: [] }))).toThrow(/replicas/);
    expect(() => decodeConfig(bytes({ ...base, replicas: ["n1", "n1"] }))).toThrow(/repeats/);
    expect(() => decodeConfig(bytes({ ...base, configVersion: -1 }))).toThrow(/configVersion/);
    expect(() => decodeConfig(bytes({ ...base, replacement: { from: "n3" } }))).toThrow(/replacement/);
    expect(configRecordFits(encodeConfig(next), base)).toBe(true);
    expect(configRecordFits(encodeConfig({ ...next, blockCount: 65 }), base)).toBe(false);
    expect(configRecordFits(bytes("nonsense"), base)).toBe(false);
  });

  it("after records: the last config record's, else the one before", () => {
    const rec = (c: VolumeConfig | null) => ({ kind: c === null ? "write" : "config", data: c === null ? new Uint8Array(8) : encodeConfig(c) });
    expect(configAfter(base, [])).toEqual(base);
    expect(configAfter(base, [rec(null), rec(learner), rec(null)])).toEqual(learner);
    expect(configAfter(base, [rec(learner), rec(joint), rec(null)])).toEqual(joint);
  });
});

/** The order a mount tries nodes in: `via` first, the replica set's order, the failed primary last. */
import { describe, expect, it } from "vitest";
import { mountOrder } from "../../src/client/mounter.js";

describe("mountOrder", () => {
  const set = ["n1", "n2", "n3"];
  it("keeps the replica set's order by default", () => {
    expect(mountOrder(set, null, null)).toEqual(["n1", "n2", "n3"]);
  });
  it("tries via first", () => {
    expect(mountOrder(set, "n3", null)).toEqual(["n3", "n1", "n2"]);
  });
  it("tries the failed primary last, even when it is via", () => {
    expect(mountOrder(set, "n2", "n1")).toEqual(["n2", "n3", "n1"]);
    expect(mountOrder(set, "n2", "n2")).toEqual(["n1", "n3", "n2"]);
  });
  it("ignores via and avoid outside the replica set", () => {
    expect(mountOrder(set, "n9", "n8")).toEqual(["n1", "n2", "n3"]);
  });
});

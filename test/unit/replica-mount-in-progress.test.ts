/**
 * Rule 3, takeover not tug of war: a node coordinating another client's
 * mount in progress refuses its promise to a mount without takeover. The
 * fault benchmark's primary-cut-from-client found the tug of war: client A,
 * cut off from its primary, failed over (a mount without takeover) while
 * client B's takeover waited out A's lease, and each of A's attempts ended
 * B's mount.
 */
import { describe, expect, it } from "vitest";
import type { TestOnlyPlantedBugs } from "../../src/core/replica.js";
import { asClientId, type NodeId } from "../../src/core/types.js";
import { activePrimary, ids, type Net } from "./core-net.js";

const [, n2, n3] = ids as [NodeId, NodeId, NodeId];

/**
 * n1 is the primary of client "app"; client "b" takes the volume over
 * through n2, whose mount then waits out app's lease; meanwhile app, cut
 * off from n1, fails over through n3 without takeover. n1 and n3 have heard
 * b's mount start and refuse app (b's lease); n2 must refuse too.
 */
function failoverDuringTakeover(bugs: TestOnlyPlantedBugs = {}): Net {
  const net = activePrimary(undefined, { testOnlyPlantedBugs: bugs });
  net.post(n2, { type: "request", reqId: 20, req: { type: "mount", clientId: asClientId("b"), takeover: true } });
  net.run();
  net.tick(10);
  expect(net.core(n2).status().primary).toMatchObject({ clientId: "b", epoch: 2 });
  expect(net.core(n2).status().primary?.phase).not.toBe("active");
  net.post(n3, { type: "request", reqId: 30, req: { type: "mount", clientId: asClientId("app"), takeover: false } });
  net.run();
  net.tick(10);
  expect(net.replies.get(`${n3}:30`)).toMatchObject({ ok: false, code: "VOLUME_BUSY" });
  return net;
}

describe("a mount without takeover and another client's mount in progress", () => {
  it("is refused VOLUME_BUSY by the node coordinating it, and that mount goes on to succeed", () => {
    const net = failoverDuringTakeover();
    expect(net.core(n2).status().primary).toMatchObject({ clientId: "b", epoch: 2 });
    net.tick(4_000);
    expect(net.replies.get(`${n2}:20`)).toMatchObject({ ok: true, epoch: 2 });
    expect(net.core(n2).isActivePrimary()).toBe(true);
  });

  it("ends that mount when the node grants it (planted bug preempt-mount-in-progress): the check can fail", () => {
    const net = failoverDuringTakeover({ preemptMountInProgress: true });
    net.tick(4_000);
    expect(net.replies.get(`${n2}:20`)).toMatchObject({ ok: false, code: "VOLUME_BUSY" });
  });

  it("still lets a takeover end it", () => {
    const net = activePrimary();
    net.post(n2, { type: "request", reqId: 20, req: { type: "mount", clientId: asClientId("b"), takeover: true } });
    net.run();
    net.tick(10);
    net.post(n3, { type: "request", reqId: 30, req: { type: "mount", clientId: asClientId("c"), takeover: true } });
    net.run();
    expect(net.replies.get(`${n2}:20`)).toMatchObject({ ok: false, code: "VOLUME_BUSY" });
    net.tick(4_000);
    expect(net.replies.get(`${n3}:30`)).toMatchObject({ ok: true, epoch: 3 });
  });
});

/**
 * Rule 3, takeover not tug of war: a node coordinating another client's
 * takeover in progress refuses its promise to a mount without takeover, and
 * so does a replica that promised that takeover, for a mount timeout. The
 * fault benchmark's primary-cut-from-client found the tug of war: client A,
 * cut off from its primary, failed over (a mount without takeover) while
 * client B's takeover waited out A's lease, and each of A's attempts ended
 * B's mount.
 */
import { describe, expect, it } from "vitest";
import type { CoreAction } from "../../src/core/messages.js";
import { ReplicaCore, type TestOnlyPlantedBugs } from "../../src/core/replica.js";
import { asClientId, asEpoch, asLsn, asTicks, VERSION_ZERO, type NodeId } from "../../src/core/types.js";
import { activePrimary, config, ids, type Net } from "./core-net.js";

const [n1, n2, n3] = ids as [NodeId, NodeId, NodeId];

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

  it("is refused by a replica that promised that takeover and has not heard its mount start yet, for a mount timeout", () => {
    const answers = (bugs: TestOnlyPlantedBugs, steps: (promise: (at: number, from: NodeId, epoch: number, clientId: string, takeover: boolean) => void, release: (epoch: number) => void) => void): string[] => {
      const core = new ReplicaCore(
        { nodeId: n3, config, regionBlocks: 4, testOnlyPlantedBugs: bugs },
        { promisedEpoch: asEpoch(1), commitLsn: asLsn(0), consistent: true, consistentThrough: null, unsurePastHead: false, sessions: [], logBase: VERSION_ZERO, records: [], appliedLsn: asLsn(0), regionVersions: [VERSION_ZERO, VERSION_ZERO], now: asTicks(0) },
      );
      const out: string[] = [];
      const promise = (at: number, from: NodeId, epoch: number, clientId: string, takeover: boolean): void => {
        const actions: CoreAction[] = [...core.step({ type: "tick", now: asTicks(at) }), ...core.step({ type: "message", from, msg: { type: "promise", epoch: asEpoch(epoch), clientId: asClientId(clientId), takeover, configVersion: 1 } })];
        // Persisting the promise comes before the answer: make it durable.
        for (const a of [...actions]) if ("token" in a) actions.push(...core.step({ type: "durable", token: a.token }));
        for (const a of actions) if (a.type === "send" && (a.msg.type === "promiseGranted" || a.msg.type === "promiseRefused")) out.push(`${a.msg.type} ${a.msg.epoch}${a.msg.type === "promiseRefused" ? ` ${a.msg.reason}` : ""}`);
      };
      const release = (epoch: number): void => void core.step({ type: "message", from: n2, msg: { type: "release", epoch: asEpoch(epoch) } });
      steps(promise, release);
      return out;
    };
    const timeline = (promise: (at: number, from: NodeId, epoch: number, clientId: string, takeover: boolean) => void): void => {
      promise(10, n2, 2, "b", true); // b's takeover, through n2
      promise(20, n1, 3, "app", false); // app fails over through n1 before b's mount start reached n3
      promise(20 + 5_000, n1, 4, "app", false); // a mount timeout later: b's takeover would have ended by now
    };
    expect(answers({}, timeline)).toEqual(["promiseGranted 2", "promiseRefused 3 busy", "promiseGranted 4"]);
    expect(answers({ preemptMountInProgress: true }, timeline)).toEqual(["promiseGranted 2", "promiseGranted 3", "promiseGranted 4"]);
    // b's own client is not refused; and once b's mount is released (volctl fence), a new mount is not either.
    expect(answers({}, (promise) => [promise(10, n2, 2, "b", true), promise(20, n1, 3, "b", false)])).toEqual(["promiseGranted 2", "promiseGranted 3"]);
    expect(
      answers({}, (promise, release) => {
        promise(10, n2, 2, "b", true);
        release(2);
        promise(20, n1, 3, "c", false);
      }),
    ).toEqual(["promiseGranted 2", "promiseGranted 3"]);
  });
});

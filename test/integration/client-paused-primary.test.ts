/**
 * A primary that was paused (SIGSTOP: a stalled VM, a long GC) past its
 * lease, while another client took the volume over and wrote, must not
 * serve a read that reached it after that write.
 *
 * Here the woken primary also finds the new epoch's messages in its peer
 * sockets, and so far it has always handled them before the read (it
 * answers FencedError). The case where they do not reach it (a primary cut
 * from its peers as well) is what VolumeDriver.post guards: a request read
 * before the woken process's first timer is judged by the clock's time, not
 * by the time of the pause. This test cannot cut the peers (no proxy in
 * this harness); it checks the promise as a client sees it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Cluster } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "./harness.js";

const BLOCK = 4096;

describe("a paused primary", () => {
  let c: TestCluster;
  let first: Cluster;
  let second: Cluster;
  const stopped = new Set<number>();

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("paused", 256);
    first = await connect({ cluster: c.clusterFile });
    second = await connect({ cluster: c.clusterFile });
  }, 40_000);

  afterAll(async () => {
    for (const pid of stopped) process.kill(pid, "SIGCONT");
    await first?.close();
    await second?.close();
    await c?.stop();
  }, 40_000);

  it("serves no stale read after it wakes up: the read fails or sees the newer write", async () => {
    const a = await first.mount("paused", { mode: "rw" });
    const old = Buffer.alloc(BLOCK, 0xaa);
    await a.write(0, old);
    expect(Buffer.from(await a.read(0, BLOCK)).equals(old)).toBe(true);

    const pid = c.node(a.primary).pid;
    expect(pid).not.toBeNull();
    process.kill(pid ?? 0, "SIGSTOP");
    stopped.add(pid ?? 0);

    // Taken over through the others once the paused primary's lease ran out; the new write is acknowledged.
    const b = await second.mount("paused", { mode: "rw", takeover: true });
    const newer = Buffer.alloc(BLOCK, 0xbb);
    await b.write(0, newer);

    // Invoked after the newer write completed: sent to the paused primary, whose socket holds it until it wakes.
    const read = a.read(0, BLOCK).then(
      (data) => Buffer.from(data),
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pid ?? 0, "SIGCONT");
    stopped.delete(pid ?? 0);
    const got = await read;
    if (got instanceof Buffer) expect(got.equals(old), "the woken primary served a value older than an acknowledged write").toBe(false);
    else expect(got).toBeInstanceOf(Error);
    await a.close().catch(() => undefined);
    await b.close();
  }, 90_000);
});

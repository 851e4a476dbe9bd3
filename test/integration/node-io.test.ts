/**
 * The Volume service of real volnodes over raw gRPC: byte-range I/O across
 * block boundaries, bounds, takeover and fencing, and garbage on the port.
 */
import type { ServiceError } from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "./harness.js";
import { RawVolumeClient, type IoOptions, type RawIoStream } from "./raw-volume.js";

const BLOCK = 4096;

/** A seeded generator, so a failure replays. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

function codeOf(err: unknown): string | undefined {
  const e = err as ServiceError;
  const v = e.metadata?.get("replivol-code")[0];
  return typeof v === "string" ? v : undefined;
}

describe("volnode Volume service", () => {
  let c: TestCluster;
  const clients: RawVolumeClient[] = [];
  const client = (nodeId: string): RawVolumeClient => {
    const v = new RawVolumeClient(c.node(nodeId).address);
    clients.push(v);
    return v;
  };

  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
    await c.createVolume("io", 256);
  }, 30_000);

  afterAll(async () => {
    for (const v of clients) v.close();
    await c?.stop();
  }, 30_000);

  it("round-trips random writes at unaligned offsets, as a model of the bytes predicts", async () => {
    const v = client("n1");
    const m = await v.mount("io", "rt-client");
    const io = v.openIo("io", "rt-client", m.epoch);
    const span = 48 * BLOCK;
    const model = Buffer.alloc(span);
    const rnd = prng(20261126);
    // Batches of writes sent together: the node sequences them in order, partial blocks included.
    for (let round = 0; round < 12; round++) {
      const reqs: (IoOptions & { expect?: Buffer })[] = [];
      for (let i = 0; i < 8; i++) {
        const length = 1 + rnd(3 * BLOCK);
        const offset = rnd(span - length);
        const pick = rnd(10);
        if (pick < 7) {
          const data = randomBytes(length);
          data.copy(model, offset);
          reqs.push({ kind: "IO_KIND_WRITE" as const, offset, data });
        } else if (pick < 9) {
          model.fill(0, offset, offset + length);
          reqs.push({ kind: "IO_KIND_WRITE_ZEROES" as const, offset, length });
        } else {
          // A read in the middle of the batch sees every write before it.
          reqs.push({ kind: "IO_KIND_READ" as const, offset, length, expect: Buffer.from(model.subarray(offset, offset + length)) });
        }
      }
      const replies = await io.batch(reqs);
      replies.forEach((r, i) => {
        expect(r, `round ${round} request ${i}`).toMatchObject({ ok: true });
        const want = reqs[i];
        if (want?.expect !== undefined) expect(Buffer.from(r.data ?? []).equals(want.expect), `read ${i} of round ${round}`).toBe(true);
      });
    }
    const flushed = await io.flush();
    expect(flushed.ok).toBe(true);
    for (let i = 0; i < 20; i++) {
      const length = 1 + rnd(5 * BLOCK);
      const offset = rnd(span - length);
      const r = await io.read(offset, length);
      expect(r.ok).toBe(true);
      expect(Buffer.from(r.data ?? []).equals(model.subarray(offset, offset + length)), `read ${offset}+${length}`).toBe(true);
    }
    const whole = await io.read(0, span);
    expect(Buffer.from(whole.data ?? []).equals(model)).toBe(true);
    // Trim drops whole blocks inside the range only; a trimmed block reads as zeros.
    const t = await io.io({ kind: "IO_KIND_TRIM", offset: BLOCK + 100, length: 3 * BLOCK });
    expect(t.ok).toBe(true);
    model.fill(0, 2 * BLOCK, 4 * BLOCK);
    const afterTrim = await io.read(0, 6 * BLOCK);
    expect(Buffer.from(afterTrim.data ?? []).equals(model.subarray(0, 6 * BLOCK))).toBe(true);
    io.end();
    await v.unmount("io", "rt-client");
  });

  it("answers bad requests with OUT_OF_RANGE and INVALID_ARGUMENT, and goes on serving", async () => {
    const v = client("n2");
    const m = await v.mount("io", "bounds-client", true);
    const io: RawIoStream = v.openIo("io", "bounds-client", m.epoch);
    const end = 256 * BLOCK;
    expect(await io.read(end - 10, 20)).toMatchObject({ ok: false, code: "OUT_OF_RANGE" });
    expect(await io.read(end, 1)).toMatchObject({ ok: false, code: "OUT_OF_RANGE" });
    expect(await io.write(end - 100, randomBytes(200))).toMatchObject({ ok: false, code: "OUT_OF_RANGE" });
    // Oversized: more than requestBlocksMax (1024) blocks in one request.
    expect(await io.read(0, 1025 * BLOCK)).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    expect(await io.io({ kind: "IO_KIND_READ", offset: 0, length: 0 })).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    // Data that does not match the length.
    expect(await io.io({ kind: "IO_KIND_WRITE", offset: 0, length: 10, data: randomBytes(5) })).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    expect(await io.io({ kind: "IO_KIND_UNSPECIFIED" })).toMatchObject({ ok: false, code: "INVALID_ARGUMENT" });
    // The stream still works.
    const data = randomBytes(100);
    expect(await io.write(end - 100, data)).toMatchObject({ ok: true });
    const r = await io.read(end - 100, 100);
    expect(Buffer.from(r.data ?? []).equals(data)).toBe(true);
    io.end();
    await v.unmount("io", "bounds-client");
    await expect(v.mount("nosuch", "x")).rejects.toSatisfy((e) => codeOf(e) === "NOT_FOUND");
    await expect(v.mount("io", "")).rejects.toSatisfy((e) => codeOf(e) === "INVALID_ARGUMENT");
  });

  it("refuses a second client while a mount is live (VOLUME_BUSY); a takeover fences the first", async () => {
    const a = client("n1");
    const ma = await a.mount("io", "client-a", true);
    const ioA = a.openIo("io", "client-a", ma.epoch);
    expect(await ioA.write(0, randomBytes(BLOCK))).toMatchObject({ ok: true });

    const b = client("n2");
    await expect(b.mount("io", "client-b")).rejects.toSatisfy((e) => codeOf(e) === "VOLUME_BUSY");
    // Through the live mount's own primary too.
    await expect(client("n1").mount("io", "client-b")).rejects.toSatisfy((e) => codeOf(e) === "VOLUME_BUSY");
    // A still works after the refused attempt.
    const still = await ioA.write(BLOCK, randomBytes(BLOCK));
    expect(still, JSON.stringify(still)).toMatchObject({ ok: true });

    const mb = await b.mount("io", "client-b", true);
    expect(mb.epoch).toBeGreaterThan(ma.epoch);
    const fenced = await ioA.write(2 * BLOCK, randomBytes(BLOCK));
    expect(fenced).toMatchObject({ ok: false, code: "FENCED" });
    expect(await ioA.read(0, BLOCK)).toMatchObject({ ok: false, code: "FENCED" });

    const ioB = b.openIo("io", "client-b", mb.epoch);
    const data = randomBytes(BLOCK);
    expect(await ioB.write(2 * BLOCK, data)).toMatchObject({ ok: true });
    const r = await ioB.read(2 * BLOCK, BLOCK);
    expect(Buffer.from(r.data ?? []).equals(data)).toBe(true);
    ioA.end();
    ioB.end();
    await b.unmount("io", "client-b");
  }, 30_000);

  it("survives garbage bytes on its gRPC port", async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(c.node("n3").port, "127.0.0.1", () => {
          s.write(i === 0 ? randomBytes(64 * 1024) : Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), randomBytes(4096)]));
          setTimeout(() => s.destroy(), 200);
        });
        s.on("error", () => resolve());
        s.on("close", () => resolve());
        s.setTimeout(5000, () => s.destroy());
      });
    }
    const st = await c.adminCall<{ node: string }>("n3", "NodeStatus", {});
    expect(st.node).toBe("n3");
    expect(c.node("n3").pid).not.toBeNull();
  });

  it("refuses an Io frame whose payload does not match its header, and goes on serving", async () => {
    const v = client("n2");
    const m = await v.mount("io", "frame-client", true);
    const bad = v.openIo("io", "frame-client", m.epoch);
    // A header length pointing past the end of the frame.
    bad.writeRaw(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
    const ended = await bad.ended;
    expect(codeOf(ended)).toBe("INVALID_ARGUMENT");
    const good = v.openIo("io", "frame-client", m.epoch);
    const data = randomBytes(BLOCK);
    expect((await good.write(5 * BLOCK, data)).ok).toBe(true);
    expect(Buffer.from((await good.read(5 * BLOCK, BLOCK)).data).equals(data)).toBe(true);
    good.end();
    await v.unmount("io", "frame-client");
  }, 30_000);

  it("refuses client ids the nodes reserve for their own records", async () => {
    const v = client("n1");
    const err = await v.mount("io", "replivol:repair").then(
      () => null,
      (e: unknown) => e,
    );
    expect(codeOf(err)).toBe("INVALID_ARGUMENT");
  });
});

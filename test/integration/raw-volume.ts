/**
 * A raw gRPC client of the Volume service for node tests: no client
 * library, no failover, just the wire. Every call has a deadline.
 */
import { Client, credentials, Metadata, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import { volumeService } from "../../src/rpc/proto.js";
import { decodeIoReplyBatch, encodeIoBatch, ioMethodPath, passThrough } from "../../src/rpc/io-frames.js";
import type { IoKindWire, IoReplyIn, MountReplyWire } from "../../src/rpc/volume-wire.js";

type IoReplyWire = IoReplyIn;

const CALL_DEADLINE_MS = 20_000;

export class RawVolumeClient {
  private readonly client: Client;

  constructor(readonly address: string) {
    this.client = new Client(address, credentials.createInsecure(), {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc-node.flow_control_window": 8 * 1024 * 1024,
    });
  }

  private unary<T>(method: string, request: object): Promise<T> {
    const def = volumeService().service[method];
    if (def === undefined) return Promise.reject(new Error(`Volume has no method ${method}`));
    return new Promise<T>((resolve, reject) => {
      this.client.makeUnaryRequest(
        def.path,
        (m: object) => def.requestSerialize(m),
        (b: Buffer) => def.responseDeserialize(b) as T,
        request,
        new Metadata(),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (err: ServiceError | null, res?: T) => (err !== null ? reject(err) : resolve(res as T)),
      );
    });
  }

  mount(volume: string, clientId: string, takeover = false): Promise<MountReplyWire> {
    return this.unary<MountReplyWire>("Mount", { volume, clientId, takeover, readOnly: false });
  }

  unmount(volume: string, clientId: string): Promise<object> {
    return this.unary("Unmount", { volume, clientId });
  }

  openIo(volume: string, clientId: string, epoch: number): RawIoStream {
    const call = this.client.makeBidiStreamRequest<Buffer, Buffer>(ioMethodPath(), passThrough, passThrough, new Metadata());
    return new RawIoStream(call, volume, clientId, epoch);
  }

  close(): void {
    this.client.close();
  }
}

export interface IoOptions {
  readonly kind: IoKindWire;
  readonly offset?: number;
  readonly length?: number;
  readonly data?: Uint8Array;
  /** Default: the next sequence number for write-like kinds, 0 otherwise. */
  readonly clientSeq?: number;
}

export class RawIoStream {
  private nextId = 1;
  private nextSeq = 1;
  private readonly waiting = new Map<number, { resolve: (r: IoReplyWire) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private error: Error | null = null;
  /** How the stream ended, once it did. */
  readonly ended: Promise<Error | null>;

  constructor(
    private readonly call: ClientDuplexStream<Buffer, Buffer>,
    private readonly volume: string,
    private readonly clientId: string,
    private readonly epoch: number,
  ) {
    call.on("data", (frame: Buffer) => {
      for (const r of decodeIoReplyBatch(frame).replies) {
        const w = this.waiting.get(r.id);
        if (w === undefined) continue;
        this.waiting.delete(r.id);
        clearTimeout(w.timer);
        w.resolve(r);
      }
    });
    this.ended = new Promise((resolve) => {
      const fail = (e: Error): void => {
        this.error ??= e;
        for (const w of this.waiting.values()) {
          clearTimeout(w.timer);
          w.reject(e);
        }
        this.waiting.clear();
        resolve(e);
      };
      call.on("error", (e: ServiceError) => fail(e));
      call.on("end", () => fail(new Error("Io stream ended")));
    });
  }

  /** Writes raw bytes as one stream message (tests of bad frames). */
  writeRaw(frame: Buffer): void {
    this.call.write(frame);
  }

  /** Sends several requests in one batch; resolves with their replies in order. */
  batch(reqs: readonly IoOptions[]): Promise<IoReplyWire[]> {
    if (this.error !== null) return Promise.reject(this.error);
    const out: Promise<IoReplyWire>[] = [];
    const requests = reqs.map((o) => {
      const id = this.nextId++;
      const writeLike = o.kind === "IO_KIND_WRITE" || o.kind === "IO_KIND_WRITE_ZEROES" || o.kind === "IO_KIND_TRIM";
      const clientSeq = o.clientSeq ?? (writeLike ? this.nextSeq++ : 0);
      out.push(
        new Promise<IoReplyWire>((resolve, reject) => {
          const timer = setTimeout(() => {
            this.waiting.delete(id);
            reject(new Error(`No reply to I/O ${id} in ${CALL_DEADLINE_MS} ms`));
          }, CALL_DEADLINE_MS);
          this.waiting.set(id, { resolve, reject, timer });
        }),
      );
      return { id, kind: o.kind, offset: o.offset ?? 0, length: o.length ?? o.data?.length ?? 0, clientSeq, data: o.data ?? new Uint8Array(0) };
    });
    this.call.write(encodeIoBatch({ volume: this.volume, clientId: this.clientId, epoch: this.epoch, requests }));
    return Promise.all(out);
  }

  async io(o: IoOptions): Promise<IoReplyWire> {
    const [r] = await this.batch([o]);
    if (r === undefined) throw new Error("No reply");
    return r;
  }

  read(offset: number, length: number): Promise<IoReplyWire> {
    return this.io({ kind: "IO_KIND_READ", offset, length });
  }

  write(offset: number, data: Uint8Array): Promise<IoReplyWire> {
    return this.io({ kind: "IO_KIND_WRITE", offset, data });
  }

  flush(): Promise<IoReplyWire> {
    return this.io({ kind: "IO_KIND_FLUSH" });
  }

  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

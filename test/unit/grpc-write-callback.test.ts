/**
 * The node's Io stream gives a reply frame back to its pool (and the next
 * reply is encoded over it) when the frame's write calls back
 * (src/node/volume-service.ts). That holds only if grpc-js is done with the
 * buffer by then, however far the stream is behind its flow control. Here
 * every frame is overwritten the moment its write calls back, on a stream
 * whose client window (HTTP/2's 64 KiB) keeps the server far behind: a
 * grpc-js that still read the buffer afterwards would send those bytes.
 */
import { Client, credentials, Metadata, Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ioMethodPath, passThrough, volumeServiceDefinition } from "../../src/rpc/io-frames.js";

const MESSAGES = 24;
const MESSAGE_BYTES = 1024 * 1024;
const REUSED = 0xee;

describe("grpc-js server streams", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
  });

  it("are done with a message's buffer when its write calls back", async () => {
    const server = new Server();
    let calledBack = 0;
    server.addService(volumeServiceDefinition(), {
      Io: (call: ServerDuplexStream<Buffer, Buffer>) => {
        call.once("data", () => {
          for (let i = 0; i < MESSAGES; i++) {
            const frame = Buffer.alloc(MESSAGE_BYTES, i);
            call.write(frame, () => {
              calledBack++;
              frame.fill(REUSED);
            });
          }
          call.end();
        });
      },
    });
    cleanup.push(() => server.forceShutdown());
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), { "grpc.max_receive_message_length": 2 * MESSAGE_BYTES });
    cleanup.push(() => client.close());
    const call = client.makeBidiStreamRequest<Buffer, Buffer>(ioMethodPath(), passThrough, passThrough, new Metadata());
    cleanup.push(() => call.cancel());
    const received: Buffer[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on("data", (m: Buffer) => received.push(m));
      call.on("end", resolve);
      call.on("error", reject);
    });
    call.write(Buffer.alloc(8));
    call.end();
    await ended;

    expect(received).toHaveLength(MESSAGES);
    received.forEach((m, i) => {
      expect(m.length).toBe(MESSAGE_BYTES);
      // Every byte as written: none overwritten after the write called back.
      expect(m.indexOf(REUSED), `message ${i}`).toBe(-1);
      expect(m[0]).toBe(i);
      expect(m[MESSAGE_BYTES - 1]).toBe(i);
    });
    expect(calledBack).toBe(MESSAGES);
  });
});

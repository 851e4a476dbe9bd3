/**
 * raiseServerReceiveWindows: the sessions a gRPC server accepts get 8 MiB
 * receive windows (connection and streams) and their sockets TCP_NODELAY.
 * A throw in it once went unnoticed (the session's socket proxy refuses
 * setNoDelay) and left every window at HTTP/2's 64 KiB, which halved the
 * rate of 1 MiB messages; so this looks at the session's own state.
 */
import { Client, credentials, Metadata, Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import type { Http2Server, ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FLOW_CONTROL_WINDOW_BYTES, raiseServerReceiveWindows } from "../../src/rpc/http2-window.js";
import { PEER_CHANNEL_OPTIONS, replicationServiceDefinition } from "../../src/rpc/peer-transport.js";
import { replicationService } from "../../src/rpc/proto.js";

const passThrough = (b: Buffer): Buffer => b;

describe("raiseServerReceiveWindows", () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const f of cleanup.splice(0).reverse()) f();
  });

  it("gives each accepted session 8 MiB windows and its socket TCP_NODELAY", async () => {
    const server = new Server();
    server.addService(replicationServiceDefinition(), {
      Exchange: (call: ServerDuplexStream<Buffer, unknown>) => {
        call.sendMetadata(new Metadata());
        call.on("data", (frame: Buffer) => call.write(frame.subarray(0, 4)));
      },
    });
    cleanup.push(() => server.forceShutdown());
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e === null ? resolve(p) : reject(e))));
    // Listeners added before raiseServerReceiveWindows's run before its own.
    const sessions: ServerHttp2Session[] = [];
    const noDelay: ReturnType<typeof vi.fn>[] = [];
    for (const h of (server as unknown as { http2Servers: Map<Http2Server, unknown> }).http2Servers.keys()) {
      h.on("connection", (socket: Socket) => {
        const spy = vi.fn(socket.setNoDelay.bind(socket));
        socket.setNoDelay = spy;
        noDelay.push(spy);
      });
      h.on("session", (s: ServerHttp2Session) => sessions.push(s));
    }
    raiseServerReceiveWindows(server);

    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), PEER_CHANNEL_OPTIONS);
    cleanup.push(() => client.close());
    const method = replicationService().service["Exchange"];
    if (method === undefined) throw new Error("no Exchange");
    const call = client.makeBidiStreamRequest<Buffer, Buffer>(method.path, passThrough, passThrough, new Metadata());
    cleanup.push(() => call.cancel());
    call.on("error", () => undefined);
    // A round trip after the session began: its SETTINGS and WINDOW_UPDATE have been sent by then.
    const echoed = new Promise<void>((resolve) => call.once("data", () => resolve()));
    call.write(Buffer.alloc(1024));
    await echoed;

    expect(sessions).toHaveLength(1);
    const s = sessions[0] as ServerHttp2Session;
    expect(s.state.effectiveLocalWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES);
    expect(s.localSettings.initialWindowSize).toBe(FLOW_CONTROL_WINDOW_BYTES);
    expect(noDelay).toHaveLength(1);
    expect(noDelay[0]).toHaveBeenCalledWith(true);
  });
});

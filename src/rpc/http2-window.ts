/**
 * HTTP/2 flow-control windows of the gRPC server.
 *
 * grpc-js (1.14) lets a client raise its receive window
 * (`grpc-node.flow_control_window`) but leaves a server's at HTTP/2's
 * default of 64 KiB, with no option (grpc/grpc-node#3058 is open). With
 * 64 KiB, a client that streams writes to the server waits a round trip for
 * a WINDOW_UPDATE every 64 KiB: 32 writes of 4 KiB in flight, or one of
 * 1 MiB, cannot be in flight at once. This raises the window of every
 * session the server accepts: the connection window with
 * `setLocalWindowSize`, the stream windows with a SETTINGS frame.
 *
 * grpc-js sets TCP_NODELAY on the sockets it connects, not on the ones a
 * server accepts: this sets it too, on the accepted socket itself (the
 * session's `socket` is a proxy that refuses `setNoDelay`, and a throw
 * there once left every window at 64 KiB).
 *
 * It reaches the server's HTTP/2 servers through a private field of grpc-js
 * (`http2Servers`), so it checks what it finds and fails loudly (at start,
 * not silently slow) if a grpc-js upgrade moved it.
 */
import type { Server } from "@grpc/grpc-js";
import type { Http2Server, ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";

/** The receive window of each connection and stream, both sides: 8 MiB. */
export const FLOW_CONTROL_WINDOW_BYTES = 8 * 1024 * 1024;

function raise(session: ServerHttp2Session, bytes: number): void {
  try {
    session.setLocalWindowSize(bytes);
    session.settings({ initialWindowSize: bytes });
  } catch {
    // The session closed meanwhile.
  }
}

/** Call after `bindAsync` has succeeded: raises the receive windows of the sessions it accepts from now on. */
export function raiseServerReceiveWindows(server: Server, bytes: number = FLOW_CONTROL_WINDOW_BYTES): void {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) {
    throw new Error("grpc-js internals changed: Server.http2Servers is not a map of bound HTTP/2 servers (see src/rpc/http2-window.ts)");
  }
  for (const h of servers.keys() as IterableIterator<Http2Server>) {
    if (typeof h.on !== "function") throw new Error("grpc-js internals changed: Server.http2Servers holds no HTTP/2 servers (see src/rpc/http2-window.ts)");
    h.on("connection", (socket: Socket) => socket.setNoDelay(true));
    h.on("session", (session: ServerHttp2Session) => raise(session, bytes));
  }
}

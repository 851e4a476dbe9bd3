/**
 * Frames of the streaming methods (Replication.Exchange, Volume.Io): block
 * bytes stay off protobuf encoding ("Frames" in proto/replication.proto).
 *
 *   header_length (uint32 LE) | header (protobuf) | payload
 *
 * The header is the proto message with `dataLength` set where bytes belong;
 * the payload is those bytes concatenated in header order. Encoding copies
 * each payload once, into the frame gRPC sends; decoding hands out views
 * into the received frame (no copy).
 */
import { VolumeError } from "../core/errors.js";

/** How proto-loader (de)serializes a message of proto/. */
export type Serialize = (value: object) => Buffer;
export type Deserialize = (bytes: Buffer) => unknown;

/** A frame that cannot be a message of proto/. */
export class FrameError extends VolumeError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", `Bad frame: ${message}`);
  }
}

const HEADER_LENGTH_BYTES = 4;

/** Where a frame's memory comes from: a Buffer of exactly `bytes`, not necessarily zeroed (every byte is set). */
export type FrameAlloc = (bytes: number) => Buffer;

const allocUnsafe: FrameAlloc = (bytes) => Buffer.allocUnsafe(bytes);

/** One frame: the header (with its `dataLength` fields set) and the payloads in header order. */
export function encodeFrame(serializeHeader: Serialize, header: object, payloads: readonly Uint8Array[], alloc: FrameAlloc = allocUnsafe): Buffer {
  const h = serializeHeader(header);
  let total = HEADER_LENGTH_BYTES + h.length;
  for (const p of payloads) total += p.length;
  const out = alloc(total);
  out.writeUInt32LE(h.length, 0);
  h.copy(out, HEADER_LENGTH_BYTES);
  let at = HEADER_LENGTH_BYTES + h.length;
  for (const p of payloads) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits a frame into its decoded header and its payload (a view); throws FrameError. */
export function decodeFrame(deserializeHeader: Deserialize, frame: Buffer): { header: unknown; payload: Buffer } {
  if (!Buffer.isBuffer(frame) || frame.length < HEADER_LENGTH_BYTES) throw new FrameError("shorter than its header length");
  const n = frame.readUInt32LE(0);
  if (n > frame.length - HEADER_LENGTH_BYTES) throw new FrameError(`a header of ${n} bytes in a frame of ${frame.length}`);
  let header: unknown;
  try {
    header = deserializeHeader(frame.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + n));
  } catch (err) {
    throw new FrameError(`the header does not decode: ${(err as Error).message}`);
  }
  return { header, payload: frame.subarray(HEADER_LENGTH_BYTES + n) };
}

/**
 * Hands out the payload to the header's slots, in order: each slot (an
 * object with `dataLength`) gets `data`, a view of that many bytes. Every
 * payload byte must belong to a slot.
 */
export class PayloadReader {
  private at = 0;
  constructor(private readonly payload: Buffer) {}

  /** Sets `slot.data` from `slot.dataLength`; a missing slot object reads as no bytes. */
  take(slot: unknown, what: string): void {
    if (typeof slot !== "object" || slot === null) return;
    const s = slot as { dataLength?: unknown; data?: unknown };
    const n = s.dataLength ?? 0;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new FrameError(`${what}.dataLength is not a byte count`);
    if (n > this.payload.length - this.at) throw new FrameError(`${what} claims ${n} bytes past the end of the payload`);
    s.data = this.payload.subarray(this.at, this.at + n);
    this.at += n;
  }

  /** Throws unless every payload byte was handed out. */
  end(): void {
    if (this.at !== this.payload.length) throw new FrameError(`${this.payload.length - this.at} payload bytes belong to no field`);
  }
}

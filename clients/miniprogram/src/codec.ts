/** Frames on the wire: a server frame is an array of messages, a client frame one message. */
import { decode, encode } from "@msgpack/msgpack";

export type Codec = "json" | "msgpack";

export type Message = { t: string; [field: string]: unknown };

export function encodeFrame(codec: Codec, message: Message): string | ArrayBuffer {
  if (codec === "json") return JSON.stringify(message);
  const bytes = encode(message);
  // wx's SocketTask.send takes an ArrayBuffer, not a view: copy out exactly these bytes.
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** The messages of one server frame; throws on a frame that is not an array of objects. */
export function decodeFrame(codec: Codec, data: string | ArrayBuffer): Message[] {
  let batch: unknown;
  if (typeof data === "string") {
    batch = JSON.parse(data);
  } else if (codec === "msgpack") {
    batch = decode(new Uint8Array(data));
  } else {
    throw new Error("binary frame on a json connection");
  }
  if (!Array.isArray(batch)) throw new Error("server frame is not an array");
  return batch.filter(
    (m): m is Message => typeof m === "object" && m !== null && typeof (m as Message).t === "string",
  );
}

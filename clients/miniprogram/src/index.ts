export { CLOSE_SUSPENDED, createRoom, InteractError, SDK_CODES } from "./room";
export type {
  Comment,
  Gap,
  Room,
  RoomEvent,
  RoomEvents,
  RoomOptions,
  RoomState,
  StateChange,
  Welcome,
} from "./room";
export type { Codec, Message } from "./codec";
export type { ConnectSocketOptions, NetworkStatus, SocketTask, WxLike } from "./wx";
export { backoffDelay } from "./backoff";
export { onComment, onWelcome, recoveryQuery, START } from "./order";
export type { Cursor } from "./order";

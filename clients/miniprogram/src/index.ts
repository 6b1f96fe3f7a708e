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
export type {
  ConnectSocketOptions,
  NetworkStatus,
  RequestOptions,
  RequestPaymentOptions,
  RequestSubscribeMessageOptions,
  RequestSuccess,
  RequestTask,
  SocketTask,
  WxHttp,
  WxLike,
} from "./wx";
export {
  ApiError,
  buy,
  cancelOrder,
  FINAL_STATUSES,
  getOrder,
  login,
  pay,
  REST_CODES,
  shareToken,
  subscribe,
  tokenExpiry,
} from "./rest";
export type {
  BuyOptions,
  LoginOptions,
  Order,
  OrderOptions,
  PayOptions,
  RestOptions,
  RoomCallOptions,
  Session,
  SubscribeOptions,
  Subscription,
} from "./rest";
export { backoffDelay } from "./backoff";
export { onComment, onWelcome, recoveryQuery, START } from "./order";
export type { Cursor } from "./order";

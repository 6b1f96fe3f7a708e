/**
 * The slice of the mini-program platform the SDK uses. The SDK talks to the platform only
 * through an object of this shape (the global `wx` by default), so tests can hand it a shim.
 */

export interface SocketCallbacks {
  success?: (res: { errMsg: string }) => void;
  fail?: (res: { errMsg: string }) => void;
  complete?: (res: { errMsg: string }) => void;
}

export interface ConnectSocketOptions extends SocketCallbacks {
  url: string;
  header?: Record<string, string>;
  protocols?: string[];
  tcpNoDelay?: boolean;
  perMessageDeflate?: boolean;
  /** ms before the connection attempt is given up (base library 2.10.0). */
  timeout?: number;
}

export interface SocketTask {
  send(options: { data: string | ArrayBuffer } & SocketCallbacks): void;
  close(options: { code?: number; reason?: string } & SocketCallbacks): void;
  onOpen(cb: (res: { header?: Record<string, string> }) => void): void;
  onMessage(cb: (res: { data: string | ArrayBuffer }) => void): void;
  onClose(cb: (res: { code: number; reason: string }) => void): void;
  onError(cb: (res: { errMsg: string }) => void): void;
}

export interface NetworkStatus {
  isConnected: boolean;
  networkType: string;
}

/**
 * `connectSocket`, and the app lifecycle events the SDK follows when the platform has them
 * (they are optional so a plain socket provider still works): going to the background,
 * coming back, and network changes. The `off*` forms let a closed room stop listening.
 */
export interface WxLike {
  connectSocket(options: ConnectSocketOptions): SocketTask;
  onAppHide?(cb: () => void): void;
  offAppHide?(cb: () => void): void;
  onAppShow?(cb: () => void): void;
  offAppShow?(cb: () => void): void;
  onNetworkStatusChange?(cb: (res: NetworkStatus) => void): void;
  offNetworkStatusChange?(cb: (res: NetworkStatus) => void): void;
}

/** `wx.request`'s answer: any HTTP status lands in `success`; only a network failure fails. */
export interface RequestSuccess {
  /** The body: parsed JSON with `dataType: 'json'` (the default) when it parses, else the text. */
  data: unknown;
  statusCode: number;
  /** Response headers, names as the server sent them. */
  header: Record<string, string>;
  errMsg: string;
}

export interface RequestOptions {
  url: string;
  method?: "GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS";
  /** An object is sent as JSON (with the default content type), or as a query for GET. */
  data?: string | Record<string, unknown> | ArrayBuffer;
  header?: Record<string, string>;
  /** ms (default 60000); then `fail` with "request:fail timeout". */
  timeout?: number;
  dataType?: string;
  success?: (res: RequestSuccess) => void;
  fail?: (res: { errMsg: string; errno?: number }) => void;
  complete?: (res: { errMsg: string }) => void;
}

export interface RequestTask {
  abort(): void;
}

export interface WxLoginOptions {
  timeout?: number;
  success?: (res: { code: string; errMsg: string }) => void;
  fail?: (res: { errMsg: string }) => void;
  complete?: (res: { errMsg: string }) => void;
}

/** The parameters `POST /orders/{id}/pay` answers with WeChat Pay, plus the callbacks. */
export interface RequestPaymentOptions {
  timeStamp: string;
  nonceStr: string;
  package: string;
  signType: string;
  paySign: string;
  /** The user paid (the server still waits for WeChat's notification). */
  success?: (res: { errMsg: string }) => void;
  /** "requestPayment:fail cancel" when the user closed the cashier. */
  fail?: (res: { errMsg: string }) => void;
  complete?: (res: { errMsg: string }) => void;
}

/**
 * `wx.requestSubscribeMessage`: the user's answer per template id, `accept`, `reject`,
 * `ban` (the template was banned) or `filter` (filtered by the platform), beside `errMsg`.
 */
export interface RequestSubscribeMessageOptions {
  tmplIds: string[];
  success?: (res: { errMsg: string; [tmplId: string]: string }) => void;
  fail?: (res: { errMsg: string; errCode?: number }) => void;
  complete?: (res: { errMsg: string }) => void;
}

/** The slice of `wx` the REST helpers (`login`, `buy`, `subscribe`) use. */
export interface WxHttp {
  request(options: RequestOptions): RequestTask;
  login?(options: WxLoginOptions): void;
  requestPayment?(options: RequestPaymentOptions): void;
  requestSubscribeMessage?(options: RequestSubscribeMessageOptions): void;
}

declare const wx: (WxLike & WxHttp) | undefined;

/** The global `wx` of the mini-program runtime; a clear error anywhere else. */
export function globalWx(): WxLike & WxHttp {
  if (typeof wx === "undefined" || wx === undefined) {
    throw new Error("no global wx: pass the `wx` option outside a mini-program");
  }
  return wx;
}

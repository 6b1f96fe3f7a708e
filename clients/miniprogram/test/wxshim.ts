/**
 * A `wx` for Node built on the `ws` package, with the SocketTask semantics the SDK must live
 * with: callbacks, strings or ArrayBuffers, close codes, at most 5 open sockets (the 6th
 * fails), and closing a task that is already closed failing with "task not found".
 * It records what a test needs to check that the SDK never leaks or double-closes a task.
 */
import WebSocket from "ws";
import type {
  ConnectSocketOptions,
  NetworkStatus,
  RequestOptions,
  RequestPaymentOptions,
  RequestSubscribeMessageOptions,
  RequestSuccess,
  RequestTask,
  SocketCallbacks,
  SocketTask,
  WxHttp,
  WxLike,
  WxLoginOptions,
} from "../src/wx";

export const MAX_SOCKETS = 5;

type Cb<T> = (res: T) => void;

export class ShimTask implements SocketTask {
  readonly url: string;
  ws: WebSocket | null;
  /** open: counted against the limit; closed: onClose delivered or close() called. */
  closed = false;
  private openCbs: Cb<{ header?: Record<string, string> }>[] = [];
  private messageCbs: Cb<{ data: string | ArrayBuffer }>[] = [];
  private closeCbs: Cb<{ code: number; reason: string }>[] = [];
  private errorCbs: Cb<{ errMsg: string }>[] = [];

  constructor(private readonly shim: WxShim, options: ConnectSocketOptions, refuse: string | null) {
    this.url = options.url;
    if (refuse !== null) {
      // The platform refuses the task: fail and onError, never open, nothing to close.
      this.ws = null;
      this.closed = true;
      setImmediate(() => {
        options.fail?.({ errMsg: refuse });
        for (const cb of this.errorCbs) cb({ errMsg: refuse });
      });
      return;
    }
    const ws = new WebSocket(options.url, options.protocols ?? [], {
      perMessageDeflate: options.perMessageDeflate ?? false,
      handshakeTimeout: options.timeout ?? 60000,
    });
    this.ws = ws;
    ws.binaryType = "nodebuffer";
    ws.on("open", () => {
      options.success?.({ errMsg: "connectSocket:ok" });
      for (const cb of this.openCbs) cb({ header: {} });
    });
    ws.on("message", (raw: Buffer, isBinary: boolean) => {
      this.shim.framesIn += 1;
      const data = isBinary
        ? (raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength) as ArrayBuffer)
        : raw.toString("utf8");
      for (const cb of this.messageCbs) cb({ data });
    });
    ws.on("error", (err: Error) => {
      for (const cb of this.errorCbs) cb({ errMsg: `connectSocket:fail ${err.message}` });
    });
    ws.on("close", (code: number, reason: Buffer) => {
      this.release();
      for (const cb of this.closeCbs) cb({ code, reason: reason.toString("utf8") });
    });
  }

  onOpen(cb: Cb<{ header?: Record<string, string> }>): void {
    this.openCbs.push(cb);
  }
  onMessage(cb: Cb<{ data: string | ArrayBuffer }>): void {
    this.messageCbs.push(cb);
  }
  onClose(cb: Cb<{ code: number; reason: string }>): void {
    this.closeCbs.push(cb);
  }
  onError(cb: Cb<{ errMsg: string }>): void {
    this.errorCbs.push(cb);
  }

  send(options: { data: string | ArrayBuffer } & SocketCallbacks): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN) {
      const errMsg = "sendSocketMessage:fail WebSocket is not connected";
      options.fail?.({ errMsg });
      options.complete?.({ errMsg });
      return;
    }
    const data = typeof options.data === "string" ? options.data : Buffer.from(options.data);
    ws.send(data, { binary: typeof options.data !== "string" });
    this.shim.framesOut.push(options.data);
    options.success?.({ errMsg: "sendSocketMessage:ok" });
  }

  close(options: { code?: number; reason?: string } & SocketCallbacks = {}): void {
    this.shim.closeCalls += 1;
    this.shim.closeCodes.push(options.code ?? 1000);
    if (this.closed || this.ws === null) {
      const errMsg = "closeSocket:fail task not found";
      this.shim.failedCloses.push(errMsg);
      options.fail?.({ errMsg });
      options.complete?.({ errMsg });
      return;
    }
    this.release();
    const ws = this.ws;
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(options.code ?? 1000, options.reason);
    // A peer that never answers the close (a dead socket) is dropped, like the platform does.
    setTimeout(() => ws.terminate(), 1000).unref();
    options.success?.({ errMsg: "closeSocket:ok" });
  }

  /** Cut the TCP connection without a close frame, as a network change does. */
  cut(): void {
    this.ws?.terminate();
  }

  /** Stop reading from the socket: nothing arrives any more and no FIN either. */
  stall(): void {
    (this.ws as unknown as { _socket?: { pause(): void } })?._socket?.pause();
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.shim.openCount -= 1;
  }
}

/** One `wx.request` as it went out, and its answer (`statusCode` null when none came). */
export interface RecordedRequest {
  method: string;
  url: string;
  header: Record<string, string>;
  body: string | undefined;
  statusCode: number | null;
  responseHeader: Record<string, string>;
  /** What the page's callback got: "request:ok" or the fail message. */
  errMsg: string;
}

/**
 * A network fault for the next matching request: `drop` lets the server handle it and then
 * loses the answer (the app sees "request:fail timeout"); `statusCode` answers in place of
 * the server (a gateway's 503), which never sees the request.
 */
export interface RequestFault {
  match: (method: string, url: string) => boolean;
  drop?: boolean;
  statusCode?: number;
  data?: unknown;
}

export type PayBehaviour = "succeed" | "cancel" | "fail";

/** The user's answer to one template of a subscribe dialog (`ban`: the template is banned). */
export type SubscribeAnswer = "accept" | "reject" | "ban";

export class WxShim implements WxLike, WxHttp {
  readonly tasks: ShimTask[] = [];
  openCount = 0;
  maxOpen = 0;
  closeCalls = 0;
  failedCloses: string[] = [];
  framesIn = 0;
  framesOut: (string | ArrayBuffer)[] = [];
  private noteRefusal: () => void = () => undefined;
  /** Settles when the platform first refuses a task over the limit. */
  readonly refused = new Promise<void>((resolve) => (this.noteRefusal = resolve));
  private readonly hideCbs = new Set<() => void>();
  private readonly showCbs = new Set<() => void>();
  private readonly networkCbs = new Set<(res: NetworkStatus) => void>();
  /** Close codes the SDK passed to task.close(), in order. */
  readonly closeCodes: number[] = [];

  onAppHide(cb: () => void): void {
    this.hideCbs.add(cb);
  }
  offAppHide(cb: () => void): void {
    this.hideCbs.delete(cb);
  }
  onAppShow(cb: () => void): void {
    this.showCbs.add(cb);
  }
  offAppShow(cb: () => void): void {
    this.showCbs.delete(cb);
  }
  onNetworkStatusChange(cb: (res: NetworkStatus) => void): void {
    this.networkCbs.add(cb);
  }
  offNetworkStatusChange(cb: (res: NetworkStatus) => void): void {
    this.networkCbs.delete(cb);
  }

  /** How many lifecycle listeners are registered (a closed room must leave none). */
  get listeners(): number {
    return this.hideCbs.size + this.showCbs.size + this.networkCbs.size;
  }

  /**
   * The app goes to the background: onAppHide fires, and `cutAfterMs` later (5 s on the
   * platform) every socket still open is cut, as the suspended app's network is; the
   * promise settles then.
   */
  hide(cutAfterMs = 5000): Promise<void> {
    for (const cb of Array.from(this.hideCbs)) cb();
    return new Promise((resolve) => {
      setTimeout(() => {
        for (const task of this.tasks) if (!task.closed) task.cut();
        resolve();
      }, cutAfterMs);
    });
  }

  show(): void {
    for (const cb of Array.from(this.showCbs)) cb();
  }

  networkChange(isConnected: boolean, networkType = "wifi"): void {
    for (const cb of Array.from(this.networkCbs)) cb({ isConnected, networkType });
  }

  connectSocket(options: ConnectSocketOptions): SocketTask {
    const refuse =
      this.openCount >= MAX_SOCKETS ? "connectSocket:fail exceed max task count" : null;
    if (refuse !== null) this.noteRefusal();
    else {
      this.openCount += 1;
      this.maxOpen = Math.max(this.maxOpen, this.openCount);
    }
    const task = new ShimTask(this, options, refuse);
    this.tasks.push(task);
    return task;
  }

  // -- wx.request, wx.login, wx.requestPayment ------------------------------------------

  readonly requests: RecordedRequest[] = [];
  private readonly faults: RequestFault[] = [];
  /** The fake WeChat (tests/fakes/wechat.py) that issues `wx.login` codes; null: login fails. */
  wechatBase: string | null = null;
  /** The openid the fake WeChat ties the next codes to (default: a new one per code). */
  openid: string | undefined;
  logins = 0;
  /** What the user does at the cashier `wx.requestPayment` opens. */
  payBehaviour: PayBehaviour = "succeed";
  /** Runs when the user pays, before `success` (e.g. tells a fake WeChat Pay to pay). */
  onPayment: (options: RequestPaymentOptions) => Promise<void> = async () => undefined;
  readonly payments: RequestPaymentOptions[] = [];

  /** Queue a fault for the next request that matches (each fault is used once). */
  fault(fault: RequestFault): void {
    this.faults.push(fault);
  }

  /**
   * wx.request over Node's fetch, with the platform's semantics: every HTTP status goes to
   * `success` with `statusCode`, `header` and `data` (JSON-parsed with dataType json when it
   * parses, else the text); only no answer goes to `fail`; `complete` follows either.
   * An object `data` is a query for GET, JSON for a JSON content type (the default).
   */
  request(options: RequestOptions): RequestTask {
    const method = options.method ?? "GET";
    const header: Record<string, string> = { ...options.header };
    const typeName = Object.keys(header).find((k) => k.toLowerCase() === "content-type");
    if (typeName === undefined) header["content-type"] = "application/json";
    const contentType = header[typeName ?? "content-type"] ?? "";
    let url = options.url;
    let body: string | ArrayBuffer | undefined;
    const data = options.data;
    if (typeof data === "string") body = data;
    else if (data instanceof ArrayBuffer) body = data;
    else if (data !== undefined) {
      const pairs = Object.entries(data).map(([k, v]) => [k, String(v)]);
      if (method === "GET") url += (url.includes("?") ? "&" : "?") + new URLSearchParams(pairs).toString();
      else if (contentType.includes("json")) body = JSON.stringify(data);
      else body = new URLSearchParams(pairs).toString();
    }
    if (method === "GET") body = undefined;
    const record: RecordedRequest = {
      method,
      url,
      header,
      body: typeof body === "string" ? body : undefined,
      statusCode: null,
      responseHeader: {},
      errMsg: "",
    };
    this.requests.push(record);
    const at = this.faults.findIndex((f) => f.match(method, url));
    const fault = at >= 0 ? this.faults.splice(at, 1)[0] : undefined;

    let done = false;
    let why = "";
    const controller = new AbortController();
    const finish = (res: RequestSuccess | null, errMsg: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      record.errMsg = errMsg;
      if (res !== null) options.success?.(res);
      else options.fail?.({ errMsg });
      options.complete?.({ errMsg });
    };
    const timer = setTimeout(() => {
      why = "timeout";
      controller.abort();
    }, options.timeout ?? 60000);

    if (fault?.statusCode !== undefined) {
      const res = { data: fault.data ?? "", statusCode: fault.statusCode, header: {}, errMsg: "request:ok" };
      record.statusCode = fault.statusCode;
      setImmediate(() => finish(res, res.errMsg));
      return { abort: () => finish(null, "request:fail abort") };
    }
    fetch(url, { method, headers: header, body, signal: controller.signal }).then(
      async (r) => {
        const text = await r.text();
        const responseHeader: Record<string, string> = {};
        r.headers.forEach((value, name) => (responseHeader[name] = value));
        record.statusCode = r.status;
        record.responseHeader = responseHeader;
        if (fault?.drop) {
          finish(null, "request:fail timeout"); // the server did it; the app never hears
          return;
        }
        let parsed: unknown = text;
        if ((options.dataType ?? "json") === "json") {
          try {
            parsed = JSON.parse(text);
          } catch {
            // the platform hands over the text as it is
          }
        }
        finish({ data: parsed, statusCode: r.status, header: responseHeader, errMsg: "request:ok" }, "request:ok");
      },
      (err: Error) => finish(null, `request:fail ${why || err.message}`),
    );
    return {
      abort: () => {
        why = "abort";
        controller.abort();
      },
    };
  }

  /** wx.login: a fresh code from the fake WeChat, as the platform gets one from WeChat. */
  login(options: WxLoginOptions): void {
    const fail = (errMsg: string): void => {
      options.fail?.({ errMsg });
      options.complete?.({ errMsg });
    };
    const base = this.wechatBase;
    if (base === null) {
      setImmediate(() => fail("login:fail no WeChat to ask"));
      return;
    }
    fetch(`${base.replace(/\/+$/, "")}/_fake/codes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(this.openid === undefined ? {} : { openid: this.openid }),
    })
      .then((r) => r.json() as Promise<{ code: string }>)
      .then(
        ({ code }) => {
          this.logins += 1;
          const res = { code, errMsg: "login:ok" };
          options.success?.(res);
          options.complete?.(res);
        },
        (err: Error) => fail(`login:fail ${err.message}`),
      );
  }

  /** wx.requestPayment: the cashier opens, and the user pays, cancels, or it fails. */
  requestPayment(options: RequestPaymentOptions): void {
    this.payments.push(options);
    const end = (ok: boolean, errMsg: string): void => {
      if (ok) options.success?.({ errMsg });
      else options.fail?.({ errMsg });
      options.complete?.({ errMsg });
    };
    const behaviour = this.payBehaviour;
    if (behaviour === "cancel") setImmediate(() => end(false, "requestPayment:fail cancel"));
    else if (behaviour === "fail") setImmediate(() => end(false, "requestPayment:fail system error"));
    else {
      this.onPayment(options).then(
        () => end(true, "requestPayment:ok"),
        (err: Error) => end(false, `requestPayment:fail ${err.message}`),
      );
    }
  }

  /** What the user answers per template id in the subscribe dialog (default `accept`). */
  subscribeAnswers: Record<string, SubscribeAnswer> = {};
  /** Set: the dialog fails instead (not from a tap, or the main switch is off). */
  subscribeFailure: string | null = null;
  readonly subscribeAsks: string[][] = [];

  /** wx.requestSubscribeMessage: one answer per template id, as the dialog gives them. */
  requestSubscribeMessage(options: RequestSubscribeMessageOptions): void {
    this.subscribeAsks.push([...options.tmplIds]);
    const failure = this.subscribeFailure;
    setImmediate(() => {
      if (failure !== null) {
        const res = { errMsg: `requestSubscribeMessage:fail ${failure}`, errCode: 20004 };
        options.fail?.(res);
        options.complete?.(res);
        return;
      }
      const res: { errMsg: string; [tmplId: string]: string } = { errMsg: "requestSubscribeMessage:ok" };
      for (const id of options.tmplIds) res[id] = this.subscribeAnswers[id] ?? "accept";
      options.success?.(res);
      options.complete?.(res);
    });
  }

  get last(): ShimTask {
    const task = this.tasks[this.tasks.length - 1];
    if (!task) throw new Error("no task yet");
    return task;
  }
}

/**
 * Login and money over REST (docs/rest.md): `login()` trades a `wx.login` code for a token,
 * `buy()` reserves flash-sale units, pays and waits for the order's final state. Every call
 * goes through `wx.request`; retries keep what makes them safe (the same Idempotency-Key
 * for a reservation, a fresh `wx.login` code for a login).
 */
import { backoffDelay } from "./backoff";
import { InteractError } from "./room";
import { RequestSuccess, WxHttp, globalWx } from "./wx";

/** An order record (docs/rest.md §10); fields the SDK does not read are passed through. */
export interface Order {
  id: string;
  sale: string;
  room: string;
  uid: string;
  qty: number;
  amount_fen: number;
  /** `reserved`, then `paid`, `cancelled`, `expired`, `paid_late` or `refunded`. */
  status: string;
  expires_at: number;
  [field: string]: unknown;
}

export interface Session {
  token: string;
  user: { uid: string; nick: string; role: string };
  unionid: string | null;
  /** When the token stops working (its `exp`), ms since the epoch; null if unreadable. */
  expiresAt: number | null;
}

/**
 * A refused or failed REST call. `code` is the server's (`sold_out`, `limit_reached`,
 * `expired`, `conflict`, `unauthorized`, `overloaded`, …) or one of REST_CODES.
 */
export class ApiError extends InteractError {
  /** The HTTP status, or null when no answer came. */
  readonly status: number | null;
  /** The server's error object: `code`, `message` and fields such as `left`. */
  readonly body: Record<string, unknown> | null;
  /** The order concerned, when there is one (a cancelled or unconfirmed payment). */
  readonly orderId: string | null;

  constructor(
    code: string,
    message: string,
    extra: { status?: number | null; body?: Record<string, unknown> | null; orderId?: string | null } = {},
  ) {
    super(code, message);
    this.name = "ApiError";
    this.status = extra.status ?? null;
    this.body = extra.body ?? null;
    this.orderId = extra.orderId ?? null;
  }
}

/**
 * Codes of the REST helpers themselves: `network` (no answer, after the retries),
 * `bad_answer` (an answer the SDK cannot read), `login_failed` (`wx.login` failed),
 * `pay_cancelled` (the user closed the cashier: the order stays reserved),
 * `pay_failed` (`wx.requestPayment` failed otherwise), `timeout` (paid, but the server had
 * not confirmed it by the deadline: poll `getOrder` later), `subscribe_failed`
 * (`wx.requestSubscribeMessage` failed: not from a tap, or the user's switch is off).
 */
export const REST_CODES = [
  "network",
  "bad_answer",
  "login_failed",
  "pay_cancelled",
  "pay_failed",
  "timeout",
  "subscribe_failed",
] as const;

/** Statuses an order does not leave on its own (a refund is an operator's later act). */
export const FINAL_STATUSES = ["paid", "cancelled", "expired", "paid_late", "refunded"] as const;

export interface RestOptions {
  /** http(s) root of the server, e.g. `https://live.example.com` (a whitelisted request domain). */
  baseUrl: string;
  wx?: WxHttp;
  /** Per request, ms (default 10000). */
  timeoutMs?: number;
  /** Tries per call, counting the first, on no answer or a 5xx (default 4). */
  attempts?: number;
  /** Back-off between tries: full jitter in [0, min(cap, base × 2^try)) (default 300 / 3000 ms). */
  retryBaseMs?: number;
  retryCapMs?: number;
  random?: () => number;
}

export interface LoginOptions extends RestOptions {
  /** The nick to show in rooms (default `微信用户` on the server). */
  nick?: string;
}

export interface OrderOptions extends RestOptions {
  /** Called before each call: the token of the buyer. */
  getToken: () => string | Promise<string>;
}

export interface PayOptions extends OrderOptions {
  /** How long to wait for the server to confirm a payment (default 30000 ms). */
  confirmTimeoutMs?: number;
  /** Period of `GET /orders/{id}` while waiting (default 1000 ms). */
  pollIntervalMs?: number;
}

export interface BuyOptions extends PayOptions {
  /** The reservation's Idempotency-Key (default: a new random key for this call). */
  idempotencyKey?: string;
}

export interface RoomCallOptions extends OrderOptions {
  roomId: string;
}

export interface SubscribeOptions extends RoomCallOptions {
  /** The template ids to ask for (the server's `reminder_templates`; at most 3 per ask). */
  templateIds: string[];
}

export interface Subscription {
  /** The templates the user accepted now: one message credit each, reported to the server. */
  accepted: string[];
  /** WeChat's answer per template id: `accept`, `reject`, `ban` or `filter`. */
  answers: Record<string, string>;
  /** The credits the server holds for the user in this room per template (null: none asked). */
  credits: Record<string, number> | null;
}

interface Answer {
  status: number;
  body: unknown;
  header: Record<string, string>;
}

interface Call {
  method: "GET" | "POST";
  path: string;
  token?: string;
  data?: Record<string, unknown>;
  header?: Record<string, string>;
}

const API = "/api/v1";

/**
 * Logs the user in: `wx.login`, then `POST /api/v1/auth/wechat`. A code works once, so a
 * try that got no answer (or a 5xx) is repeated with a fresh code.
 */
export async function login(options: LoginOptions): Promise<Session> {
  const http = new Http(options);
  const answer = await http.retrying(async () => {
    const code = await wxLogin(http.wx);
    const data: Record<string, unknown> = { code };
    if (options.nick !== undefined) data.nick = options.nick;
    return http.send({ method: "POST", path: `${API}/auth/wechat`, data });
  });
  const body = expectOk(answer, 200) as Partial<Session>;
  if (typeof body.token !== "string" || typeof body.user !== "object" || body.user === null) {
    throw new ApiError("bad_answer", "the login answer has no token", { status: answer.status });
  }
  return {
    token: body.token,
    user: body.user,
    unionid: typeof body.unionid === "string" ? body.unionid : null,
    expiresAt: tokenExpiry(body.token),
  };
}

/**
 * Buys `qty` units of a flash sale: reserves them (one Idempotency-Key for this call,
 * kept across its retries, so a retry never makes a second order), then pays as `pay()`.
 * Resolves with the order in a final state (check `status === 'paid'`).
 */
export async function buy(saleId: string, qty: number, options: BuyOptions): Promise<Order> {
  const http = new Http(options);
  const key = options.idempotencyKey ?? newKey(http.random);
  const answer = await http.retrying(async () =>
    http.send({
      method: "POST",
      path: `${API}/sales/${encodeURIComponent(saleId)}/orders`,
      token: await options.getToken(),
      data: { qty },
      header: { "Idempotency-Key": key },
    }),
  );
  const order = asOrder(expectOk(answer, 201), answer.status);
  if (isFinal(order.status)) return order; // a replayed key whose order is over already
  return payWith(http, order.id, options);
}

/**
 * Pays a reserved order and waits until the server says it is final. With WeChat Pay the
 * answer's `params` go to `wx.requestPayment`; with the server's dev provider (development
 * only: a buyer marks their own order paid) its `confirm_url` is POSTed instead. Rejects
 * with `pay_cancelled` when the user closes the cashier: the order stays reserved until
 * its `expires_at`, so the page may call `pay` again or `cancelOrder`.
 */
export function pay(orderId: string, options: PayOptions): Promise<Order> {
  return payWith(new Http(options), orderId, options);
}

/** Releases a reserved order now (`POST /orders/{id}/cancel`). */
export async function cancelOrder(orderId: string, options: OrderOptions): Promise<Order> {
  const http = new Http(options);
  const answer = await http.retrying(async () =>
    http.send({ method: "POST", path: orderPath(orderId, "/cancel"), token: await options.getToken() }),
  );
  return asOrder(expectOk(answer, 200), answer.status);
}

/** The order as it is now (`GET /orders/{id}`). */
export async function getOrder(orderId: string, options: OrderOptions): Promise<Order> {
  const http = new Http(options);
  const answer = await http.retrying(async () =>
    http.send({ method: "GET", path: orderPath(orderId), token: await options.getToken() }),
  );
  return asOrder(expectOk(answer, 200), answer.status);
}

/**
 * A share token of the caller for a room (`POST /api/v1/rooms/{id}/share-tokens`), to put
 * in the path `onShareAppMessage` returns, e.g. `/pages/room/room?roomId=…&inv=TOKEN`.
 * Opens through it are attributed to the caller (never the share itself: WeChat reports no
 * share). The server keeps a few per user and room, so asking again is cheap.
 */
export async function shareToken(options: RoomCallOptions): Promise<string> {
  const http = new Http(options);
  const answer = await http.retrying(async () =>
    http.send({ method: "POST", path: roomPath(options.roomId, "/share-tokens"), token: await options.getToken() }),
  );
  const body = expectOk(answer, answer.status === 200 ? 200 : 201);
  if (typeof body.token !== "string") throw new ApiError("bad_answer", "no token in the answer", { status: answer.status });
  return body.token;
}

/**
 * Asks the user for pre-live reminders: `wx.requestSubscribeMessage({tmplIds})` (call it
 * from a tap: the platform refuses otherwise), then reports the accepted template ids to
 * `POST /api/v1/rooms/{id}/subscriptions`, where each is one message credit. Nothing is
 * sent when none was accepted. A report whose answer was lost is sent again: a credit too
 * many costs one refused send (WeChat's 43101, which clears it), a credit lost costs the
 * user a reminder they asked for.
 */
export async function subscribe(options: SubscribeOptions): Promise<Subscription> {
  const http = new Http(options);
  const answers = await requestSubscribe(http.wx, options.templateIds);
  const accepted = options.templateIds.filter((id) => answers[id] === "accept");
  if (accepted.length === 0) return { accepted, answers, credits: null };
  const answer = await http.retrying(async () =>
    http.send({
      method: "POST",
      path: roomPath(options.roomId, "/subscriptions"),
      token: await options.getToken(),
      data: { templates: accepted },
    }),
  );
  const body = expectOk(answer, answer.status === 200 ? 200 : 201);
  const credits = typeof body.credits === "object" && body.credits !== null ? body.credits : {};
  return { accepted, answers, credits: credits as Record<string, number> };
}

function requestSubscribe(wx: WxHttp, tmplIds: string[]): Promise<Record<string, string>> {
  if (!wx.requestSubscribeMessage) {
    return Promise.reject(new ApiError("subscribe_failed", "this wx has no requestSubscribeMessage"));
  }
  return new Promise((resolve, reject) => {
    wx.requestSubscribeMessage?.({
      tmplIds,
      success: (res) => {
        const answers: Record<string, string> = {};
        for (const id of tmplIds) if (typeof res[id] === "string") answers[id] = res[id];
        resolve(answers);
      },
      fail: ({ errMsg }) => reject(new ApiError("subscribe_failed", errMsg)),
    });
  });
}

function roomPath(roomId: string, action: string): string {
  return `${API}/rooms/${encodeURIComponent(roomId)}${action}`;
}

async function payWith(http: Http, orderId: string, options: PayOptions): Promise<Order> {
  // Paying twice is safe on the server (the same order goes to WeChat again): retry it.
  const answer = await http.retrying(async () =>
    http.send({ method: "POST", path: orderPath(orderId, "/pay"), token: await options.getToken() }),
  );
  const how = expectOk(answer, 200);
  if (how.provider === "dev" && typeof how.confirm_url === "string") {
    const url = how.confirm_url;
    const confirmed = await http.retrying(async () =>
      http.send({ method: "POST", path: url, token: await options.getToken() }),
    );
    const order = asOrder(expectOk(confirmed, 200), confirmed.status);
    if (isFinal(order.status)) return order;
  } else if (how.provider === "wechat" && typeof how.params === "object" && how.params !== null) {
    await requestPayment(http.wx, how.params as Record<string, string>, orderId);
  } else {
    throw new ApiError("bad_answer", "unknown payment provider", { status: answer.status, orderId });
  }
  return waitFinal(http, orderId, options);
}

/** WeChat confirms a payment to the server, not to the app: poll until it is in. */
async function waitFinal(http: Http, orderId: string, options: PayOptions): Promise<Order> {
  const deadline = Date.now() + (options.confirmTimeoutMs ?? 30000);
  const period = options.pollIntervalMs ?? 1000;
  for (;;) {
    let answer: Answer | null = null;
    try {
      answer = await http.send({ method: "GET", path: orderPath(orderId), token: await options.getToken() });
    } catch (error) {
      if (!(error instanceof ApiError) || error.code !== "network") throw error;
    }
    // A poll that got no answer, or a 5xx, is just a poll missed; a refusal is an answer.
    if (answer !== null && answer.status < 500) {
      const order = asOrder(expectOk(answer, 200), answer.status);
      if (isFinal(order.status)) return order;
    }
    if (Date.now() + period > deadline) {
      throw new ApiError("timeout", "the payment was not confirmed in time; the order may still be paid", {
        orderId,
      });
    }
    await sleep(period);
  }
}

function requestPayment(wx: WxHttp, params: Record<string, string>, orderId: string): Promise<void> {
  if (!wx.requestPayment) return Promise.reject(new ApiError("pay_failed", "this wx has no requestPayment", { orderId }));
  return new Promise((resolve, reject) => {
    wx.requestPayment?.({
      timeStamp: params.timeStamp,
      nonceStr: params.nonceStr,
      package: params.package,
      signType: params.signType,
      paySign: params.paySign,
      success: () => resolve(),
      fail: ({ errMsg }) => {
        const cancelled = /cancel/.test(errMsg);
        reject(new ApiError(cancelled ? "pay_cancelled" : "pay_failed", errMsg, { orderId }));
      },
    });
  });
}

function wxLogin(wx: WxHttp): Promise<string> {
  if (!wx.login) return Promise.reject(new ApiError("login_failed", "this wx has no login"));
  return new Promise((resolve, reject) => {
    wx.login?.({
      success: ({ code }) => resolve(code),
      fail: ({ errMsg }) => reject(new ApiError("login_failed", errMsg)),
    });
  });
}

/** One server's `wx.request`, with the retry policy of the options. */
class Http {
  readonly wx: WxHttp;
  readonly random: () => number;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly retryBaseMs: number;
  private readonly retryCapMs: number;

  constructor(options: RestOptions) {
    this.wx = options.wx ?? globalWx();
    this.random = options.random ?? Math.random;
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 10000;
    this.attempts = Math.max(1, options.attempts ?? 4);
    this.retryBaseMs = options.retryBaseMs ?? 300;
    this.retryCapMs = options.retryCapMs ?? 3000;
  }

  /** Tries `attempt` until it gets an answer under 500, or the tries run out. */
  async retrying(attempt: () => Promise<Answer>): Promise<Answer> {
    for (let n = 1; ; n++) {
      let answer: Answer | null = null;
      try {
        answer = await attempt();
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== "network" || n >= this.attempts) throw error;
      }
      if (answer !== null && (answer.status < 500 || n >= this.attempts)) return answer;
      await sleep(backoffDelay(n - 1, this.random, this.retryBaseMs, this.retryCapMs));
    }
  }

  send(call: Call): Promise<Answer> {
    const header: Record<string, string> = { ...call.header };
    if (call.token !== undefined) header.Authorization = `Bearer ${call.token}`;
    if (call.data !== undefined) header["Content-Type"] = "application/json";
    return new Promise((resolve, reject) => {
      this.wx.request({
        url: this.base + call.path,
        method: call.method,
        data: call.data,
        header,
        timeout: this.timeoutMs,
        dataType: "json",
        success: (res: RequestSuccess) => resolve({ status: res.statusCode, body: res.data, header: res.header }),
        fail: ({ errMsg }) => reject(new ApiError("network", errMsg)),
      });
    });
  }
}

/** The body of a successful answer, or the server's error as an ApiError. */
function expectOk(answer: Answer, status: number): Record<string, unknown> {
  const body = typeof answer.body === "object" && answer.body !== null ? (answer.body as Record<string, unknown>) : null;
  if (answer.status === status && body !== null) return body;
  const error = body !== null && typeof body.error === "object" ? (body.error as Record<string, unknown> | null) : null;
  if (error !== null && typeof error.code === "string") {
    const message = typeof error.message === "string" ? error.message : error.code;
    throw new ApiError(error.code, message, { status: answer.status, body: error });
  }
  // Not the server's error body (a proxy's page, say): name it by its status.
  const code = answer.status >= 500 ? "overloaded" : answer.status === status ? "bad_answer" : "bad_request";
  throw new ApiError(code, `HTTP ${answer.status}`, { status: answer.status });
}

function asOrder(body: Record<string, unknown>, status: number): Order {
  if (typeof body.id !== "string" || typeof body.status !== "string") {
    throw new ApiError("bad_answer", "the answer is not an order", { status });
  }
  return body as Order;
}

function isFinal(status: string): boolean {
  return (FINAL_STATUSES as readonly string[]).indexOf(status) >= 0;
}

function orderPath(orderId: string, action = ""): string {
  return `${API}/orders/${encodeURIComponent(orderId)}${action}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A key unique enough per purchase: time plus 64 random bits (no crypto API on every base library). */
function newKey(random: () => number): string {
  let bits = "";
  for (let i = 0; i < 4; i++) bits += Math.floor(random() * 0x10000).toString(16).padStart(4, "0");
  return `mp-${Date.now().toString(36)}-${bits}`;
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** The `exp` of a JWT in ms, read without verifying it (the server does that), or null. */
export function tokenExpiry(token: string): number | null {
  const payload = token.split(".")[1];
  if (payload === undefined) return null;
  // Bytes as Latin-1 characters: multi-byte UTF-8 in a nick stays inside its JSON string.
  let text = "";
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < payload.length; i++) {
    const v = B64URL.indexOf(payload.charAt(i));
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      text += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  try {
    const exp = (JSON.parse(text) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

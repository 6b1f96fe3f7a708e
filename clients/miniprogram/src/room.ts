/**
 * One viewer connection to one room: connect, welcome, events, requests matched to their
 * acks by `ref`, likes coalesced, reconnects with recovery, a watchdog for dead sockets.
 * docs/protocol.md is the contract this follows.
 */
import { backoffDelay } from "./backoff";
import { Codec, Message, decodeFrame, encodeFrame } from "./codec";
import { Cursor, START, onComment, onWelcome, recoveryQuery } from "./order";
import { NetworkStatus, SocketTask, WxLike, globalWx } from "./wx";

export type RoomState = "connecting" | "live" | "suspended" | "reconnecting" | "closed";

export interface Comment extends Message {
  t: "dm";
  seq: number;
  uid: string;
  nick: string;
  role: string;
  text: string;
  color: number;
  mode: string;
  ts: number;
}

export interface Welcome extends Message {
  t: "welcome";
  room: Record<string, unknown>;
  user: { uid: string; nick: string; role: string };
  seq: number;
  epoch: string;
  online: number;
  recovered: boolean;
  history: Comment[];
  rp?: Message[];
  lot?: Message[];
  sale?: Message[];
}

export interface StateChange {
  state: RoomState;
  /** The close code that led here, when a close did. */
  code?: number;
}

export interface Gap {
  /** The welcome that could not replay what was missed: show its `history` instead. */
  welcome: Welcome;
  /** True when the room's numbering restarted (a new epoch). */
  newEpoch: boolean;
}

export interface RoomEvents {
  dm: Comment;
  like: Message;
  online: Message;
  room: Message;
  notice: Message;
  retract: Message;
  rp: Message;
  rp_done: Message;
  lot: Message;
  lot_result: Message;
  sale: Message;
  stock: Message;
  state: StateChange;
  gap: Gap;
  welcome: Welcome;
}

export type RoomEvent = keyof RoomEvents;

/** A refused or failed request; `code` is a protocol code (§6) or one of the SDK's own. */
export class InteractError extends Error {
  readonly code: string;
  readonly ack: Message | null;

  constructor(code: string, message: string, ack: Message | null = null) {
    super(message);
    this.name = "InteractError";
    this.code = code;
    this.ack = ack;
  }
}

/**
 * Codes the SDK itself uses, besides the server's: `timeout` (no ack in time),
 * `disconnected` (the socket dropped before the ack: the request may or may not have been
 * carried out), `not_connected` (no live connection), `closed` (the room was closed).
 */
export const SDK_CODES = ["timeout", "disconnected", "not_connected", "closed"] as const;

export interface RoomOptions {
  /** ws:// or wss:// root of the server, e.g. `wss://live.example.com`. */
  url: string;
  roomId: string;
  /** Called for every connection attempt; called again once after a 4001. */
  getToken: () => string | Promise<string>;
  codec?: Codec;
  wx?: WxLike;
  /** Client ping period; the socket is taken for dead after twice this in silence. */
  pingIntervalMs?: number;
  ackTimeoutMs?: number;
  /** Likes are sent at most once per this period. */
  likeIntervalMs?: number;
  connectTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  random?: () => number;
  /**
   * The share token the room was opened with (the `inv` of the share path, from
   * `shareToken()` of whoever shared it). Sent as `inv=` until the first welcome, never on
   * a reconnect: attribution is first touch and counts opens, and a reconnect is the same
   * open, not a new one (docs/growth.md).
   */
  inviteToken?: string;
}

export interface Room {
  readonly state: RoomState;
  /** The last welcome, with the room record and the open red packets, lotteries, sales. */
  readonly welcome: Welcome | null;
  on<E extends RoomEvent>(event: E, handler: (payload: RoomEvents[E]) => void): () => void;
  off<E extends RoomEvent>(event: E, handler: (payload: RoomEvents[E]) => void): void;
  /** Resolves with the comment's seq, or null when moderation holds it for review. */
  send(text: string, options?: { color?: number; mode?: "scroll" | "top" | "bottom" }): Promise<number | null>;
  like(n?: number): void;
  grab(id: string): Promise<{ amount_fen: number; left: number }>;
  /** `password` lotteries are entered by a comment holding the password: that is sent. */
  enter(id: string, options?: { password?: string }): Promise<{ entries?: number; seq?: number | null }>;
  close(): void;
}

interface Pending {
  resolve: (ack: Message) => void;
  reject: (error: InteractError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Close codes after which reconnecting cannot help (4001 gets one token refresh first). */
const FINAL_CODES = new Set([4003, 4004]);
/** Close codes that ask for an immediate reconnect with recovery. */
const AT_ONCE_CODES = new Set([1001, 4029]);
/**
 * The close code that tells the server the app went to the background and will be back
 * (docs/protocol.md §7): it keeps the viewer counted online, and its watch time running,
 * for a grace period, and a reconnection within it takes that place back.
 */
export const CLOSE_SUSPENDED = 4100;
const MAX_LIKE_FRAME = 100;
const MAX_QUEUED_LIKES = 1000;

type Handler = (payload: never) => void;

class RoomConnection implements Room {
  state: RoomState = "connecting";
  welcome: Welcome | null = null;

  private readonly opts: Required<Omit<RoomOptions, "wx" | "inviteToken">>;
  private readonly inviteToken: string | undefined;
  private readonly wx: WxLike;
  private readonly handlers = new Map<RoomEvent, Set<Handler>>();
  private readonly pending = new Map<number, Pending>();
  private task: SocketTask | null = null;
  /** Tasks already closed, or failed: never closed (again) by us. */
  private readonly finished = new WeakSet<SocketTask>();
  private cursor: Cursor = START;
  private attempt = 0;
  private tokenRefreshed = false;
  private nextRef = 1;
  private lastReceived = 0;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private likeTimer: ReturnType<typeof setTimeout> | null = null;
  private likesQueued = 0;
  private lastLikeSent = -Infinity;
  /** In the background (wx.onAppHide until wx.onAppShow): no socket is opened. */
  private hidden = false;
  private readonly lifecycle = {
    hide: (): void => this.onHide(),
    show: (): void => this.onShow(),
    network: (res: NetworkStatus): void => this.onNetwork(res),
  };

  constructor(options: RoomOptions) {
    this.wx = options.wx ?? globalWx();
    this.opts = {
      url: options.url.replace(/\/+$/, ""),
      roomId: options.roomId,
      getToken: options.getToken,
      codec: options.codec ?? "json",
      pingIntervalMs: options.pingIntervalMs ?? 25000,
      ackTimeoutMs: options.ackTimeoutMs ?? 10000,
      likeIntervalMs: options.likeIntervalMs ?? 400,
      connectTimeoutMs: options.connectTimeoutMs ?? 10000,
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffCapMs: options.backoffCapMs ?? 20000,
      random: options.random ?? Math.random,
    };
    // Only a token that can be one: a mangled share path must not cost the viewer a 400.
    this.inviteToken = /^[A-Za-z0-9_-]{16}$/.test(options.inviteToken ?? "") ? options.inviteToken : undefined;
    this.wx.onAppHide?.(this.lifecycle.hide);
    this.wx.onAppShow?.(this.lifecycle.show);
    this.wx.onNetworkStatusChange?.(this.lifecycle.network);
    void this.connect();
  }

  on<E extends RoomEvent>(event: E, handler: (payload: RoomEvents[E]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    set.add(handler as Handler);
    return () => this.off(event, handler);
  }

  off<E extends RoomEvent>(event: E, handler: (payload: RoomEvents[E]) => void): void {
    this.handlers.get(event)?.delete(handler as Handler);
  }

  send(text: string, options: { color?: number; mode?: "scroll" | "top" | "bottom" } = {}): Promise<number | null> {
    const message: Message = { t: "dm", text };
    if (options.color !== undefined) message.color = options.color;
    if (options.mode !== undefined) message.mode = options.mode;
    return this.request(message).then((ack) => (typeof ack.seq === "number" ? ack.seq : null));
  }

  like(n = 1): void {
    if (this.state === "closed" || !(n > 0)) return;
    // Bounded: taps piling up while offline are not worth a burst the server would drop.
    this.likesQueued = Math.min(MAX_QUEUED_LIKES, this.likesQueued + Math.floor(n));
    this.scheduleLikes();
  }

  grab(id: string): Promise<{ amount_fen: number; left: number }> {
    return this.request({ t: "grab", id }).then((ack) => ({
      amount_fen: ack.amount_fen as number,
      left: ack.left as number,
    }));
  }

  enter(id: string, options: { password?: string } = {}): Promise<{ entries?: number; seq?: number | null }> {
    if (options.password !== undefined) {
      return this.send(options.password).then((seq) => ({ seq }));
    }
    return this.request({ t: "enter", id }).then((ack) => ({ entries: ack.entries as number }));
  }

  close(): void {
    if (this.state === "closed") return;
    this.stop("closed", undefined, "the room was closed");
  }

  // -- the app's lifecycle ---------------------------------------------------------------

  /**
   * The app goes to the background; 5 s later the platform cuts its network and suspends
   * its JS. Close first, with the code that keeps this viewer's place on the server, so
   * the room's online count does not flap and nothing is left half-open.
   */
  private onHide(): void {
    if (this.state === "closed" || this.hidden) return;
    this.hidden = true;
    this.cancelRetry();
    const task = this.task;
    this.task = null;
    this.stopWatchdog();
    if (task) this.abandon(task, CLOSE_SUSPENDED);
    this.failPending("disconnected", "the app went to the background before an answer");
    this.setState("suspended", CLOSE_SUSPENDED);
  }

  /** Back in the foreground: reconnect at once, with since/epoch to get what was missed. */
  private onShow(): void {
    if (this.state === "closed" || !this.hidden) return;
    this.hidden = false;
    this.attempt = 0;
    void this.connect();
  }

  /** The network came back or changed: whatever socket there was is likely dead. */
  private onNetwork(res: NetworkStatus): void {
    if (this.state === "closed" || this.hidden || !res.isConnected) return;
    const task = this.task;
    if (task !== null) {
      if (this.state !== "live") return; // a connection attempt on the new network is under way
      // Handed over like a suspension: the server keeps the place for the new socket.
      this.task = null;
      this.stopWatchdog();
      this.abandon(task, CLOSE_SUSPENDED);
      this.failPending("disconnected", `the network changed (${res.networkType}) before an answer`);
      this.setState("reconnecting");
    } else if (this.retryTimer === null) {
      return; // fetching a token for the next attempt already
    }
    this.cancelRetry();
    this.attempt = 0;
    void this.connect();
  }

  private cancelRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  // -- connection lifecycle ------------------------------------------------------------

  private async connect(): Promise<void> {
    this.retryTimer = null;
    let token: string;
    try {
      token = await this.opts.getToken();
    } catch {
      if (this.state !== "closed" && !this.hidden) this.retry(undefined);
      return;
    }
    if (this.state === "closed" || this.task !== null || this.hidden) return;
    const o = this.opts;
    const url =
      `${o.url}/ws?room=${encodeURIComponent(o.roomId)}&token=${encodeURIComponent(token)}` +
      (o.codec === "msgpack" ? "&codec=msgpack" : "") +
      // Until a welcome has come, no connection has opened the room yet: keep trying it.
      (this.inviteToken !== undefined && this.welcome === null ? `&inv=${this.inviteToken}` : "") +
      recoveryQuery(this.cursor);
    const task = this.wx.connectSocket({ url, tcpNoDelay: true, timeout: o.connectTimeoutMs });
    this.task = task;
    this.lastReceived = Date.now();
    task.onOpen(() => {
      if (task === this.task) this.lastReceived = Date.now();
    });
    task.onMessage(({ data }) => {
      if (task === this.task) this.receive(data);
    });
    task.onClose(({ code }) => {
      this.finished.add(task);
      if (task === this.task) this.dropped(code);
    });
    task.onError(() => {
      // A task that failed to open may get no onClose at all, and closing it would fail
      // with "closeSocket:fail task not found": count it as gone.
      this.finished.add(task);
      if (task === this.task) this.dropped(1006);
    });
    this.startWatchdog(task);
  }

  private startWatchdog(task: SocketTask): void {
    this.stopWatchdog();
    const period = this.opts.pingIntervalMs;
    this.pingTimer = setInterval(() => {
      if (task !== this.task) return;
      if (Date.now() - this.lastReceived > 2 * period) {
        // No FIN, no frames: a dead socket. Close it ourselves and start over.
        this.abandon(task);
        this.dropped(1006);
        return;
      }
      if (this.state === "live") this.write({ t: "ping" });
    }, period);
  }

  private stopWatchdog(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /** Close a task once, unless it is already closed or failed. */
  private abandon(task: SocketTask, code = 1000): void {
    if (this.finished.has(task)) return;
    this.finished.add(task);
    try {
      task.close({ code, fail: () => undefined });
    } catch {
      // A platform that throws instead of calling fail: the task is gone either way.
    }
  }

  private dropped(code: number): void {
    this.task = null;
    this.stopWatchdog();
    this.failPending("disconnected", `the connection closed (${code}) before an answer`);
    if (this.state === "closed" || this.hidden) return;
    if (FINAL_CODES.has(code)) {
      this.stop("closed", code, `the server closed the connection with ${code}`);
      return;
    }
    if (code === 4001) {
      if (this.tokenRefreshed) {
        this.stop("closed", code, "the token was refused twice");
        return;
      }
      this.tokenRefreshed = true;
      this.setState("reconnecting", code);
      void this.connect();
      return;
    }
    this.retry(code);
  }

  private retry(code: number | undefined): void {
    this.setState(this.welcome === null ? "connecting" : "reconnecting", code);
    const atOnce = code !== undefined && AT_ONCE_CODES.has(code) && this.attempt === 0;
    const delay = atOnce
      ? 0
      : backoffDelay(this.attempt, this.opts.random, this.opts.backoffBaseMs, this.opts.backoffCapMs);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private stop(state: "closed", code: number | undefined, why: string): void {
    const task = this.task;
    this.task = null;
    if (task) this.abandon(task);
    this.stopWatchdog();
    this.cancelRetry();
    if (this.likeTimer !== null) clearTimeout(this.likeTimer);
    this.likeTimer = null;
    this.wx.offAppHide?.(this.lifecycle.hide);
    this.wx.offAppShow?.(this.lifecycle.show);
    this.wx.offNetworkStatusChange?.(this.lifecycle.network);
    this.failPending("closed", why);
    this.setState(state, code);
  }

  private setState(state: RoomState, code?: number): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", code === undefined ? { state } : { state, code });
  }

  // -- incoming ------------------------------------------------------------------------

  private receive(data: string | ArrayBuffer): void {
    this.lastReceived = Date.now();
    let batch: Message[];
    try {
      batch = decodeFrame(this.opts.codec, data);
    } catch {
      return; // A frame we cannot read is skipped; the protocol lets clients ignore unknowns.
    }
    for (const message of batch) {
      if (this.task === null) return; // a handler closed the room mid-batch
      this.dispatch(message);
    }
  }

  private dispatch(message: Message): void {
    switch (message.t) {
      case "welcome":
        this.welcomed(message as Welcome);
        return;
      case "dm": {
        const step = onComment(this.cursor, message as Comment);
        this.cursor = step.cursor;
        if (step.deliver) this.emit("dm", message as Comment);
        return;
      }
      case "ack":
        this.acked(message);
        return;
      case "pong":
      case "error":
        return;
      default:
        this.emit(message.t as RoomEvent, message as never);
    }
  }

  private welcomed(welcome: Welcome): void {
    const newEpoch = this.cursor.epoch !== null && this.cursor.epoch !== welcome.epoch;
    const step = onWelcome(this.cursor, welcome);
    this.cursor = step.cursor;
    this.attempt = 0;
    this.tokenRefreshed = false;
    this.welcome = welcome;
    this.setState("live");
    this.emit("welcome", welcome);
    if (step.gap) this.emit("gap", { welcome, newEpoch });
    for (const comment of step.deliver) this.emit("dm", comment);
    this.flushLikes();
  }

  private acked(ack: Message): void {
    if (typeof ack.ref !== "number") return;
    const pending = this.pending.get(ack.ref);
    if (!pending) return;
    this.pending.delete(ack.ref);
    clearTimeout(pending.timer);
    if (ack.ok === true) {
      pending.resolve(ack);
    } else {
      const code = typeof ack.code === "string" ? ack.code : "bad_request";
      pending.reject(new InteractError(code, typeof ack.msg === "string" ? ack.msg : code, ack));
    }
  }

  private emit<E extends RoomEvent>(event: E, payload: RoomEvents[E]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const handler of Array.from(set)) {
      try {
        (handler as (p: RoomEvents[E]) => void)(payload);
      } catch (error) {
        // A page handler's bug must not break the connection's bookkeeping.
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }

  // -- outgoing ------------------------------------------------------------------------

  private write(message: Message): boolean {
    const task = this.task;
    if (task === null || this.state !== "live") return false;
    task.send({ data: encodeFrame(this.opts.codec, message), fail: () => undefined });
    return true;
  }

  private request(message: Message): Promise<Message> {
    if (this.state === "closed") {
      return Promise.reject(new InteractError("closed", "the room was closed"));
    }
    if (this.state !== "live" || this.task === null) {
      return Promise.reject(new InteractError("not_connected", `the room is ${this.state}`));
    }
    const ref = this.nextRef++;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new InteractError("timeout", `no answer within ${this.opts.ackTimeoutMs} ms`));
      }, this.opts.ackTimeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      this.write({ ...message, ref });
    });
  }

  private failPending(code: string, why: string): void {
    const all = Array.from(this.pending.values());
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(new InteractError(code, why));
    }
  }

  private scheduleLikes(): void {
    if (this.likeTimer !== null || this.likesQueued === 0) return;
    const wait = Math.max(0, this.lastLikeSent + this.opts.likeIntervalMs - Date.now());
    this.likeTimer = setTimeout(() => {
      this.likeTimer = null;
      this.flushLikes();
    }, wait);
  }

  /** Send at most one like frame now, if one is due; the rest waits for the next period. */
  private flushLikes(): void {
    if (this.likesQueued === 0 || this.likeTimer !== null) return;
    if (Date.now() - this.lastLikeSent < this.opts.likeIntervalMs) {
      this.scheduleLikes();
      return;
    }
    const n = Math.min(MAX_LIKE_FRAME, this.likesQueued);
    if (!this.write({ t: "like", n })) return; // kept for the next welcome
    this.likesQueued -= n;
    this.lastLikeSent = Date.now();
    this.scheduleLikes();
  }
}

export function createRoom(options: RoomOptions): Room {
  return new RoomConnection(options);
}

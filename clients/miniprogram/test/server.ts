/**
 * A real `interact serve` for the tests (memory engine, dev login on; or the Redis engine
 * on a private `redis-server`), like tests/e2e/harness.py starts it, a small REST client,
 * and a switch (a TCP forwarder) to move a client's url from one process to another.
 */
import { ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { Server as NetServer, Socket, connect as netConnect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import WebSocket from "ws";

export const SECRET = "sdk-test-secret-0123456789abcdef0123456789abcdef";
const REPO_ROOT = resolve(__dirname, "..", "..", "..", "..");

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface Server {
  port: number;
  base: string;
  ws: string;
  proc: ChildProcess;
  log: () => string;
  /** SIGTERM (a graceful shutdown: viewers get 1001), SIGKILL after 10 s; the exit code. */
  stop: () => Promise<number | null>;
  /** SIGKILL: no close frames, no flush, as a crashed or OOM-killed process. */
  kill: () => Promise<void>;
  /** A new process with the same settings on the same port (after stop or kill). */
  restart: () => Promise<Server>;
}

export interface ServerOptions {
  /** Listen here (a restart on the port a killed process had); a free port by default. */
  port?: number;
}

export async function startServer(env: Record<string, string> = {}, options: ServerOptions = {}): Promise<Server> {
  const port = options.port ?? (await freePort());
  const python = process.env.PYTHON || "python3";
  const inherited: Record<string, string | undefined> = { ...process.env };
  // The caller's engine and config file never leak in; a test passes its own Redis in env.
  delete inherited.INTERACT_REDIS_URL;
  delete inherited.INTERACT_CONFIG;
  const fullEnv: Record<string, string | undefined> = {
    ...inherited,
    INTERACT_SECRET: SECRET,
    INTERACT_HOST: "127.0.0.1",
    INTERACT_PORT: String(port),
    INTERACT_LOG_FORMAT: "text",
    INTERACT_LOG_LEVEL: "warning",
    // Pacing off: the tests comment faster than a viewer may.
    INTERACT_RATE_PER_S: "0",
    INTERACT_REPEAT_WINDOW: "0",
    ...env,
  };
  const proc = spawn(python, ["-m", "interact", "serve"], {
    cwd: REPO_ROOT,
    env: fullEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const base = `http://127.0.0.1:${port}`;
  const server: Server = {
    port,
    base,
    ws: `ws://127.0.0.1:${port}`,
    proc,
    log: () => output,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10000);
      await once(proc, "exit");
      clearTimeout(timer);
      return proc.exitCode;
    },
    kill: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGKILL");
      await once(proc, "exit");
    },
    restart: () => startServer(env, { port }),
  };
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited ${proc.exitCode}:\n${output}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.status === 200) return server;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.stop();
  throw new Error(`server not ready in 30 s:\n${output}`);
}

/** A counter or gauge of the process's `GET /metrics` (0 when not exposed yet). */
export async function metric(server: Server, name: string): Promise<number> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && /^[a-z_]+(\{[^}]*\})? /.test(line)) {
      const [head, value] = line.split(/ (?=[^ ]+$)/);
      if (head === name || head?.startsWith(`${name}{`)) total += Number(value);
    }
  }
  return total;
}

/** A throwaway `redis-server` on a free port (never the shared one on 6379). */
export interface Redis {
  port: number;
  url: string;
  stop: () => Promise<void>;
}

export async function startRedis(): Promise<Redis> {
  const dir = mkdtempSync(join(tmpdir(), "sdk-redis-"));
  let last = "";
  // A port picked free can be taken before redis binds it; try a few, as tests/redis_server.py.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    proc.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline && proc.exitCode === null) {
      if (await redisPing(port)) {
        return {
          port,
          url: `redis://127.0.0.1:${port}/0`,
          stop: async () => {
            if (proc.exitCode === null && proc.signalCode === null) {
              proc.kill("SIGTERM");
              await once(proc, "exit");
            }
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (proc.exitCode === null) {
      proc.kill("SIGKILL");
      await once(proc, "exit");
    }
    last = output;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`redis-server did not start: ${last}`);
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolvePing) => {
    const socket = netConnect(port, "127.0.0.1");
    let reply = "";
    const done = (ok: boolean): void => {
      socket.destroy();
      resolvePing(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}

/**
 * A TCP forwarder in front of server processes: clients keep one url while the test
 * points it at another process (as a load balancer moves traffic off a process that is
 * shutting down). Connections already forwarded stay where they are.
 */
export class Switch {
  private readonly server: NetServer;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private target: number) {
    this.server = createServer((client) => {
      const upstream = netConnect(this.target, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<this> {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    this.port = address.port;
    return this;
  }

  get ws(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  point(port: number): void {
    this.target = port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    await once(this.server, "close");
  }
}

/**
 * Everything the server still holds after `since = 0` in `epoch`, read as a plain
 * WebSocket client: the room's history as the server has it, to compare a page against.
 */
export async function serverHistory(
  wsBase: string,
  roomId: string,
  token: string,
  epoch: string,
): Promise<{ recovered: boolean; epoch: string; history: { seq: number; text: string }[] }> {
  const socket = new WebSocket(
    `${wsBase}/ws?room=${encodeURIComponent(roomId)}&token=${encodeURIComponent(token)}&since=0&epoch=${encodeURIComponent(epoch)}`,
  );
  const [data] = (await once(socket, "message")) as [Buffer];
  socket.close();
  const [welcome] = JSON.parse(data.toString("utf8")) as [Record<string, any>];
  if (welcome?.t !== "welcome") throw new Error(`not a welcome: ${data.toString("utf8")}`);
  return welcome as { recovered: boolean; epoch: string; history: { seq: number; text: string }[] };
}

export class Api {
  constructor(
    readonly base: string,
    readonly token: string,
  ) {}

  static async login(base: string, uid: string, role = "viewer"): Promise<Api> {
    const body = await call(base, "POST", "/api/v1/auth/dev", null, { uid, role }, 200);
    return new Api(base, body.token as string);
  }

  call(method: string, path: string, body?: unknown, expect?: number): Promise<Record<string, any>> {
    return call(this.base, method, path, this.token, body, expect);
  }

  async liveRoom(title = "sdk"): Promise<string> {
    const room = await this.call("POST", "/api/v1/rooms", { title }, 201);
    await this.call("POST", `/api/v1/rooms/${room.id}/start`, undefined, 200);
    return room.id as string;
  }

  publish(roomId: string, text: string): Promise<Record<string, any>> {
    return this.call("POST", `/api/v1/rooms/${roomId}/messages`, { text }, 201);
  }
}

async function call(
  base: string,
  method: string,
  path: string,
  token: string | null,
  body: unknown,
  expect?: number,
): Promise<Record<string, any>> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  const parsed = text ? (JSON.parse(text) as Record<string, any>) : {};
  if (expect !== undefined && r.status !== expect) {
    throw new Error(`${method} ${path}: ${r.status} ${text}`);
  }
  return parsed;
}

/**
 * A real `interact serve` for the tests (memory engine, dev login on), like
 * tests/e2e/harness.py starts it, and a small REST client.
 */
import { ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { resolve } from "node:path";

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
  stop: () => Promise<void>;
}

export async function startServer(env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const python = process.env.PYTHON || "python3";
  const fullEnv: Record<string, string | undefined> = {
    ...process.env,
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
  delete fullEnv.INTERACT_REDIS_URL;
  delete fullEnv.INTERACT_CONFIG;
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
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10000);
      await once(proc, "exit");
      clearTimeout(timer);
    },
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

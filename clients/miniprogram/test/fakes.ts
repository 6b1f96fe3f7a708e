/**
 * The WeChat fakes of the Python tests as processes: tests/fakes/wechat.py (login codes,
 * jscode2session) and tests/fakes/wechatpay.py through test/fake_wechatpay.py (JSAPI
 * orders and signed payment notifications). Each prints one line when it is listening.
 */
import { ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

const REPO_ROOT = resolve(__dirname, "..", "..", "..", "..");

export const WECHAT_APPID = "wx0123456789fake";
export const WECHAT_SECRET = "fake-app-secret-0123456789abcdef";

export interface Fake {
  proc: ChildProcess;
  stop: () => Promise<void>;
}

async function startFake(args: string[]): Promise<{ line: string; fake: Fake }> {
  const python = process.env.PYTHON || "python3";
  const proc = spawn(python, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
  let errors = "";
  proc.stderr?.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.stdin?.end();
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await once(proc, "exit");
    clearTimeout(timer);
  };
  const lines = createInterface({ input: proc.stdout! });
  const first = new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`${args.join(" ")}: not up in 30 s\n${errors}`)), 30000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      ok(line);
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${args.join(" ")} exited ${code}:\n${errors}`));
    });
  });
  try {
    return { line: await first, fake: { proc, stop } };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The fake WeChat API; `base` is what `--wechat-api-base` and the shim's `wechatBase` take. */
export async function startWeChat(): Promise<Fake & { base: string; env: Record<string, string> }> {
  const { line, fake } = await startFake(["-m", "tests.fakes.wechat", "--appid", WECHAT_APPID, "--secret", WECHAT_SECRET]);
  const base = line.trim();
  return {
    ...fake,
    base,
    env: { INTERACT_WECHAT_APPID: WECHAT_APPID, INTERACT_WECHAT_SECRET: WECHAT_SECRET, INTERACT_WECHAT_API_BASE: base },
  };
}

export interface FakePay extends Fake {
  /** The server's INTERACT_* settings for this fake. */
  env: Record<string, string>;
  /** Points the fake's notifications at a started server. */
  target: (serverBase: string) => Promise<void>;
  /** The user pays the prepay order of these `wx.requestPayment` parameters. */
  pay: (pkg: string) => Promise<void>;
}

export async function startWeChatPay(): Promise<FakePay> {
  const { line, fake } = await startFake(["-m", "clients.miniprogram.test.fake_wechatpay"]);
  const { env, control } = JSON.parse(line) as { env: Record<string, string>; control: string };
  const post = async (path: string, body: unknown): Promise<void> => {
    const r = await fetch(control + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) throw new Error(`fake WeChat Pay ${path}: ${r.status} ${await r.text()}`);
  };
  return {
    ...fake,
    env: { ...env, INTERACT_WECHATPAY_NOTIFY_URL: `${control}/notify`, INTERACT_SWEEP_INTERVAL: "0.2" },
    target: (serverBase) => post("/target", { url: `${serverBase}/api/v1/pay/wechat/notify` }),
    pay: (pkg) => post("/pay", { package: pkg }),
  };
}

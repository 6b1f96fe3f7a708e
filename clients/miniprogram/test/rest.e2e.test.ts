/**
 * login() and buy() in Node against real `interact serve` processes, through the wx shim's
 * `wx.request`, `wx.login` (codes from the fake WeChat) and `wx.requestPayment`: one server
 * with the dev payment provider, one with WeChat Pay (the fake, with signed notifications).
 */
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, BuyOptions, Room, buy, cancelOrder, createRoom, getOrder, login, pay } from "../src/index";
import { live, waitFor } from "./events";
import { Fake, FakePay, startWeChat, startWeChatPay } from "./fakes";
import { Api, Server, startServer } from "./server";
import { RecordedRequest, WxShim } from "./wxshim";

let uidCounter = 0;
function uid(prefix: string): string {
  uidCounter += 1;
  return `${prefix}${uidCounter}-${process.pid}`;
}

const opened: Room[] = [];
afterEach(() => {
  for (const room of opened.splice(0)) room.close();
});

/** An operator's live room with a sale on its shelf. */
async function saleIn(ops: Api, fields: Record<string, unknown>): Promise<{ room: string; sale: string }> {
  const room = await ops.liveRoom("shop");
  const sale = await ops.call("POST", `/api/v1/rooms/${room}/sales`, { title: "口红", price_fen: 9900, ...fields }, 201);
  return { room, sale: sale.id as string };
}

function reserves(shim: WxShim): RecordedRequest[] {
  return shim.requests.filter((r) => r.method === "POST" && /\/sales\/[^/]+\/orders$/.test(r.url));
}

function keyOf(request: RecordedRequest): string | undefined {
  return request.header["Idempotency-Key"];
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => assert.fail("resolved"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ApiError, String(error));
  return error;
}

describe("dev payment provider, WeChat login", () => {
  let server: Server;
  let wechat: Fake & { base: string; env: Record<string, string> };
  let ops: Api;

  before(async () => {
    wechat = await startWeChat();
    // WeChat login configured turns dev login off by default: the operator still needs it.
    server = await startServer({ ...wechat.env, INTERACT_DEV_LOGIN: "true", INTERACT_PAY_PROVIDER: "dev" });
    ops = await Api.login(server.base, "ops", "operator");
  });

  after(async () => {
    await server?.stop();
    await wechat?.stop();
  });

  function viewer(shim: WxShim, id: string): BuyOptions {
    let token: Promise<string> | null = null;
    return {
      baseUrl: server.base,
      wx: shim,
      getToken: () => (token ??= Api.login(server.base, id).then((a) => a.token)),
      random: () => 0.5,
    };
  }

  test("login: wx.login's code is exchanged for a token that works", { timeout: 30000 }, async () => {
    const shim = new WxShim();
    shim.wechatBase = wechat.base;
    shim.openid = `o_sdk_${process.pid}`;
    const before = Date.now();
    const session = await login({ baseUrl: `${server.base}/`, wx: shim, nick: "小明" });
    assert.deepEqual(session.user, { uid: shim.openid, nick: "小明", role: "viewer" });
    assert.equal(shim.logins, 1);
    // The server's default lifetime is 7 days; exp is in whole seconds.
    const week = 7 * 24 * 3600 * 1000;
    assert.ok(session.expiresAt !== null && session.expiresAt >= before + week - 1000, String(session.expiresAt));
    assert.ok(session.expiresAt <= Date.now() + week);
    const me = new Api(server.base, session.token);
    const rooms = await me.call("GET", "/api/v1/rooms", undefined, 200);
    assert.ok(Array.isArray(rooms.rooms));
  });

  test("login: a lost answer is retried with a fresh code; a refused code is not", { timeout: 30000 }, async () => {
    const shim = new WxShim();
    shim.wechatBase = wechat.base;
    shim.openid = `o_retry_${process.pid}`;
    shim.fault({ match: (m, url) => m === "POST" && url.endsWith("/auth/wechat"), drop: true });
    const session = await login({ baseUrl: server.base, wx: shim, random: () => 0 });
    assert.equal(session.user.uid, shim.openid);
    const tries = shim.requests.filter((r) => r.url.endsWith("/auth/wechat"));
    assert.equal(tries.length, 2);
    assert.equal(tries[0]?.statusCode, 200, "the server answered the first try");
    assert.notEqual(JSON.parse(tries[0]?.body ?? "{}").code, JSON.parse(tries[1]?.body ?? "{}").code);
    assert.equal(shim.logins, 2);

    // A gateway answering 401 is a refusal: no second code.
    shim.fault({ match: (_m, url) => url.endsWith("/auth/wechat"), statusCode: 401, data: { error: { code: "unauthorized", message: "invalid code" } } });
    const refused = await rejection(login({ baseUrl: server.base, wx: shim }));
    assert.equal(refused.code, "unauthorized");
    assert.equal(refused.status, 401);
    assert.equal(shim.logins, 3);

    const nowhere = new WxShim();
    assert.equal((await rejection(login({ baseUrl: server.base, wx: nowhere }))).code, "login_failed");
  });

  test("buy: reserve, dev pay, the order ends paid and the stock falls", { timeout: 30000 }, async () => {
    const { room, sale } = await saleIn(ops, { stock: 5, limit: 2 });
    const shim = new WxShim();
    const me = uid("buyer");
    const options = viewer(shim, me);
    const watching = createRoom({ url: server.ws, roomId: room, getToken: options.getToken, wx: shim });
    opened.push(watching);
    await live(watching);
    const stock = waitFor(watching, "stock", (s) => s.id === sale && s.left === 3);

    const order = await buy(sale, 2, options);
    assert.equal(order.status, "paid");
    assert.equal(order.qty, 2);
    assert.equal(order.amount_fen, 19800);
    assert.equal(order.uid, me);
    assert.equal((await stock).left, 3);
    const after = await ops.call("GET", `/api/v1/sales/${sale}`, undefined, 200);
    assert.deepEqual([after.left, after.reserved, after.paid], [3, 0, 2]);
    assert.equal(shim.payments.length, 0, "the dev provider needs no cashier");
    const [reserve] = reserves(shim);
    assert.ok(reserve && /^mp-[0-9a-z]+-[0-9a-f]{16}$/.test(keyOf(reserve) ?? ""), keyOf(reserve!));
    assert.ok(shim.requests.some((r) => r.url.endsWith(`/api/v1/pay/dev/${order.id}/confirm`)));
    assert.deepEqual(await getOrder(order.id, options), order);
  });

  test("buy: a reserve whose answer was lost is retried with the same key: one order", { timeout: 30000 }, async () => {
    const { room, sale } = await saleIn(ops, { stock: 5, limit: 2 });
    const shim = new WxShim();
    const me = uid("lost");
    shim.fault({ match: (m, url) => m === "POST" && url.endsWith(`/sales/${sale}/orders`), drop: true });
    const order = await buy(sale, 2, viewer(shim, me));
    assert.equal(order.status, "paid");
    const [first, second, third] = reserves(shim);
    assert.equal(third, undefined);
    assert.equal(first?.statusCode, 201, "the server reserved on the first try");
    assert.equal(first?.errMsg, "request:fail timeout");
    assert.equal(keyOf(first!), keyOf(second!));
    assert.equal(second?.responseHeader["idempotent-replayed"], "true");
    const orders = (await ops.call("GET", `/api/v1/rooms/${room}/orders`, undefined, 200)).orders as { uid: string }[];
    assert.equal(orders.filter((o) => o.uid === me).length, 1);
    const after = await ops.call("GET", `/api/v1/sales/${sale}`, undefined, 200);
    assert.deepEqual([after.left, after.paid], [3, 2]);
  });

  test("buy: a 503 is retried with the same key, and the retries are bounded", { timeout: 30000 }, async () => {
    const { sale } = await saleIn(ops, { stock: 5, limit: 1 });
    const overloaded = { error: { code: "overloaded", message: "the engine is unreachable" } };
    const isReserve = (m: string, url: string): boolean => m === "POST" && url.endsWith(`/sales/${sale}/orders`);
    const shim = new WxShim();
    shim.fault({ match: isReserve, statusCode: 503, data: overloaded });
    const order = await buy(sale, 1, viewer(shim, uid("busy")));
    assert.equal(order.status, "paid");
    const tries = reserves(shim);
    assert.deepEqual(tries.map((r) => r.statusCode), [503, 201]);
    assert.equal(keyOf(tries[0]!), keyOf(tries[1]!));

    const other = new WxShim();
    for (let i = 0; i < 3; i++) other.fault({ match: isReserve, statusCode: 503, data: overloaded });
    const error = await rejection(buy(sale, 1, { ...viewer(other, uid("busy")), attempts: 2 }));
    assert.equal(error.code, "overloaded");
    assert.equal(error.status, 503);
    assert.equal(reserves(other).length, 2);
    assert.equal((await ops.call("GET", `/api/v1/sales/${sale}`, undefined, 200)).left, 4);
  });

  test("buy: sold_out and limit_reached reject with the server's code, untried again", { timeout: 30000 }, async () => {
    const { sale } = await saleIn(ops, { stock: 3, limit: 2 });
    const shim = new WxShim();
    const first = viewer(shim, uid("a"));
    assert.equal((await buy(sale, 2, first)).status, "paid");

    const limit = await rejection(buy(sale, 1, first));
    assert.equal(limit.code, "limit_reached");
    assert.equal(limit.status, 409);
    assert.equal(limit.body?.left, 1);

    const soldOut = await rejection(buy(sale, 2, viewer(shim, uid("b"))));
    assert.equal(soldOut.code, "sold_out");
    assert.equal(soldOut.body?.left, 1);
    assert.equal(reserves(shim).length, 3, "a refusal is not retried");
    const after = await ops.call("GET", `/api/v1/sales/${sale}`, undefined, 200);
    assert.deepEqual([after.left, after.reserved, after.paid], [1, 0, 2]);
  });
});

describe("WeChat Pay provider", () => {
  let server: Server;
  let wechatPay: FakePay;
  let ops: Api;

  before(async () => {
    wechatPay = await startWeChatPay();
    server = await startServer(wechatPay.env);
    await wechatPay.target(server.base);
    ops = await Api.login(server.base, "ops", "operator");
  });

  after(async () => {
    await server?.stop();
    await wechatPay?.stop();
  });

  function viewer(shim: WxShim, id: string): BuyOptions {
    let token: Promise<string> | null = null;
    return {
      baseUrl: server.base,
      wx: shim,
      getToken: () => (token ??= Api.login(server.base, id).then((a) => a.token)),
      pollIntervalMs: 100,
    };
  }

  test("requestPayment gets the server's params; the order is paid once WeChat notifies", { timeout: 30000 }, async () => {
    const { sale } = await saleIn(ops, { stock: 2 });
    const shim = new WxShim();
    shim.onPayment = (p) => wechatPay.pay(p.package);
    const order = await buy(sale, 1, viewer(shim, uid("o_pay")));
    assert.equal(order.status, "paid");
    assert.match(order.transaction_id as string, /\d+/);
    assert.equal(shim.payments.length, 1);
    const [params] = shim.payments;
    assert.match(params?.package ?? "", /^prepay_id=wx[0-9a-f]+$/);
    assert.equal(params?.signType, "RSA");
    assert.ok((params?.paySign.length ?? 0) > 100);
  });

  test("a cancelled cashier rejects pay_cancelled and leaves the order reserved; pay again or cancel", { timeout: 30000 }, async () => {
    const { sale } = await saleIn(ops, { stock: 3, limit: 2 });
    const shim = new WxShim();
    const options = viewer(shim, uid("o_cancel"));
    shim.payBehaviour = "cancel";
    const cancelled = await rejection(buy(sale, 1, options));
    assert.equal(cancelled.code, "pay_cancelled");
    assert.equal(cancelled.message, "requestPayment:fail cancel");
    assert.ok(cancelled.orderId);
    assert.equal((await getOrder(cancelled.orderId, options)).status, "reserved");
    assert.equal((await ops.call("GET", `/api/v1/sales/${sale}`, undefined, 200)).reserved, 1);

    shim.payBehaviour = "succeed";
    shim.onPayment = (p) => wechatPay.pay(p.package);
    const paid = await pay(cancelled.orderId, options);
    assert.equal(paid.status, "paid");
    assert.equal(paid.id, cancelled.orderId);

    shim.payBehaviour = "cancel";
    const again = await rejection(buy(sale, 1, options));
    assert.equal(again.code, "pay_cancelled");
    const released = await cancelOrder(again.orderId!, options);
    assert.equal(released.status, "cancelled");
    const after = await ops.call("GET", `/api/v1/sales/${sale}`, undefined, 200);
    assert.deepEqual([after.left, after.reserved, after.paid], [2, 0, 1]);
  });

  test("a payment the server never hears of rejects timeout by the deadline", { timeout: 30000 }, async () => {
    const { sale } = await saleIn(ops, { stock: 1 });
    const shim = new WxShim(); // the cashier says paid, but nobody pays WeChat
    const options = { ...viewer(shim, uid("o_lost")), confirmTimeoutMs: 1500 };
    const started = Date.now();
    const error = await rejection(buy(sale, 1, options));
    assert.equal(error.code, "timeout");
    assert.ok(Date.now() - started < 5000);
    assert.equal((await getOrder(error.orderId!, options)).status, "reserved");
    const polls = shim.requests.filter((r) => r.method === "GET" && r.url.endsWith(`/orders/${error.orderId}`));
    assert.ok(polls.length >= 5, `${polls.length} polls`);
  });
});

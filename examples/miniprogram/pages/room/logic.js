'use strict';
/**
 * The room page's logic as plain functions: each takes the page state and one of the SDK's
 * events (and the time, where it matters) and returns the next state, never changing the
 * one it was given. No wx, no timers: room.js wires these to the SDK and to setData, and
 * test/logic.test.js runs them in Node.
 */

/** Rows of scrolling comments; and as many top and bottom slots. */
const LANES = 5;
/** Comments kept on screen at most: the oldest go first (setData cost grows with the list). */
const MAX_DANMAKU = 40;
/** A scrolling comment crosses the screen in this time (the wxss animation's duration). */
const SCROLL_MS = 8000;
/** Top and bottom comments stand still this long. */
const FIXED_MS = 4000;
/** A lane is busy until a comment's tail has entered the screen: this per character, plus a gap. */
const CHAR_MS = 160;
const LANE_GAP_MS = 600;

function initialState() {
  return {
    conn: 'connecting',
    me: null,
    title: '',
    online: 0,
    likes: 0,
    danmaku: [],
    laneFree: new Array(LANES).fill(0),
    gap: false,
    gapUntil: 0,
    notice: null,
    packet: null,
    lottery: null,
    sales: [],
  };
}

/** `16646914` → `#fe0302`: the wire's 24-bit colour as CSS. */
function colorOf(n) {
  const v = typeof n === 'number' && n >= 0 && n <= 0xffffff ? Math.floor(n) : 0xffffff;
  return '#' + ('000000' + v.toString(16)).slice(-6);
}

/** `9900` → `99.00`. */
function yuan(fen) {
  return (Math.round(fen) / 100).toFixed(2);
}

/** The lane free soonest (the first free one if several are), so comments overlap least. */
function pickLane(laneFree, now) {
  let best = 0;
  for (let i = 0; i < laneFree.length; i++) {
    if (laneFree[i] <= now) return i;
    if (laneFree[i] < laneFree[best]) best = i;
  }
  return best;
}

/** The lowest top (or bottom) slot no comment of that mode still holds. */
function fixedSlot(danmaku, mode) {
  const taken = danmaku.filter((d) => d.mode === mode).map((d) => d.lane);
  for (let i = 0; i < LANES; i++) if (taken.indexOf(i) < 0) return i;
  return LANES - 1;
}

/** Drops comments whose time on screen is over. */
function prune(state, now) {
  const kept = state.danmaku.filter((d) => d.until > now);
  return kept.length === state.danmaku.length ? state : Object.assign({}, state, { danmaku: kept });
}

/** A comment (the SDK delivers each once, in seq order): placed in a lane, the list capped. */
function addComment(state, c, now) {
  const s = prune(state, now);
  const mode = c.mode === 'top' || c.mode === 'bottom' ? c.mode : 'scroll';
  let lane;
  let laneFree = s.laneFree;
  if (mode === 'scroll') {
    lane = pickLane(laneFree, now);
    laneFree = laneFree.slice();
    const chars = String(c.text).length;
    laneFree[lane] = Math.max(laneFree[lane], now) + Math.min(SCROLL_MS, chars * CHAR_MS + LANE_GAP_MS);
  } else {
    lane = fixedSlot(s.danmaku, mode);
  }
  const item = {
    key: 'd' + c.seq,
    seq: c.seq,
    nick: c.nick,
    text: c.text,
    color: colorOf(c.color),
    mode,
    lane,
    mine: s.me !== null && c.uid === s.me,
    until: now + (mode === 'scroll' ? SCROLL_MS : FIXED_MS),
  };
  const danmaku = s.danmaku.concat([item]);
  return Object.assign({}, s, {
    danmaku: danmaku.length > MAX_DANMAKU ? danmaku.slice(danmaku.length - MAX_DANMAKU) : danmaku,
    laneFree,
  });
}

/** A retracted comment leaves the screen. */
function retract(state, msg) {
  return Object.assign({}, state, { danmaku: state.danmaku.filter((d) => d.seq !== msg.seq) });
}

/** What a sale card shows. `stock` is the units left when the message was made. */
function saleCard(s) {
  return {
    id: s.id,
    title: s.title,
    price: yuan(s.price_fen),
    left: s.stock,
    stock: s.stock,
    limit: s.limit,
    startsAt: s.starts_at,
    endsAt: s.ends_at,
    soldOut: s.stock <= 0,
  };
}

function packetCard(rp, now) {
  const password = rp.condition && rp.condition.kind === 'password' ? rp.condition.password : null;
  return {
    id: rp.id,
    total: yuan(rp.total_fen),
    count: rp.count,
    left: rp.left,
    password,
    opensAt: rp.opens_at,
    status: rp.opens_at > now ? 'countdown' : 'open',
    amount: null,
  };
}

function lotteryCard(lot) {
  const condition = lot.condition || { kind: 'enter' };
  return {
    id: lot.id,
    prize: lot.prize && lot.prize.title ? lot.prize.title : '',
    winners: lot.winners,
    kind: condition.kind,
    password: condition.kind === 'password' ? condition.password : null,
    minutes: condition.kind === 'watch' ? condition.minutes : null,
    drawAt: lot.draw_at,
    entries: lot.entries || 0,
    entered: false,
    result: null,
  };
}

/**
 * Each welcome (the first and every reconnect): the room, who I am, the online count and
 * the open packets, lotteries and sales. The pop-ups show the newest open item; a pop-up
 * already open for an item still listed keeps its state (what I grabbed, that I entered).
 */
function welcome(state, w, now) {
  const rp = w.rp || [];
  const lot = w.lot || [];
  const newestRp = rp.length ? rp[rp.length - 1] : null;
  const newestLot = lot.length ? lot[lot.length - 1] : null;
  let packet = state.packet;
  if (!packet || (packet.status !== 'grabbed' && !rp.some((p) => p.id === packet.id))) {
    packet = newestRp ? packetCard(newestRp, now) : null;
  }
  let lottery = state.lottery;
  if (!lottery || (lottery.result === null && !lot.some((l) => l.id === lottery.id))) {
    lottery = newestLot ? lotteryCard(newestLot) : null;
  }
  return Object.assign({}, state, {
    conn: 'live',
    me: w.user.uid,
    title: w.room.title,
    online: w.online,
    packet,
    lottery,
    sales: (w.sale || []).map(saleCard),
  });
}

/** How long the page says that comments were missed. */
const GAP_NOTE_MS = 3000;

/**
 * The SDK could not replay what was missed: clear the screen (the recent history follows
 * as comments) and say so for a moment.
 */
function gap(state, _gap, now) {
  return Object.assign({}, state, { danmaku: [], laneFree: new Array(LANES).fill(0), gap: true, gapUntil: now + GAP_NOTE_MS });
}

function connection(state, change) {
  return change.state === state.conn ? state : Object.assign({}, state, { conn: change.state });
}

function online(state, msg) {
  return Object.assign({}, state, { online: msg.count });
}

/** The room's total; taps shown at once (tapLike) are in it once the server counted them. */
function like(state, msg) {
  return Object.assign({}, state, { likes: Math.max(state.likes, msg.total) });
}

function tapLike(state, n) {
  return Object.assign({}, state, { likes: state.likes + (n || 1) });
}

function room(state, msg) {
  return Object.assign({}, state, { title: msg.title || state.title, conn: msg.status === 'ended' ? 'ended' : state.conn });
}

function notice(state, msg) {
  return Object.assign({}, state, { notice: { text: msg.text, level: msg.level || 'info' } });
}

function redPacket(state, rp, now) {
  return Object.assign({}, state, { packet: packetCard(rp, now) });
}

/** The answer to my grab: the amount, or why not (`already_grabbed` still says how much). */
function grabbed(state, id, result) {
  const p = state.packet;
  if (!p || p.id !== id) return state;
  let next;
  if (result.amount_fen !== undefined && (result.code === undefined || result.code === 'already_grabbed')) {
    next = { status: 'grabbed', amount: yuan(result.amount_fen) };
  } else {
    next = { status: 'missed', reason: result.code };
  }
  return Object.assign({}, state, { packet: Object.assign({}, p, next) });
}

/** A packet is over; a pop-up still offering it says it is gone (my amount stays). */
function packetDone(state, msg) {
  const p = state.packet;
  if (!p || p.id !== msg.id || p.status === 'grabbed') return state;
  return Object.assign({}, state, { packet: Object.assign({}, p, { status: 'missed', reason: msg.reason }) });
}

function closePacket(state) {
  return Object.assign({}, state, { packet: null });
}

function lottery(state, lot) {
  return Object.assign({}, state, { lottery: lotteryCard(lot) });
}

function entered(state, id) {
  const l = state.lottery;
  if (!l || l.id !== id) return state;
  return Object.assign({}, state, { lottery: Object.assign({}, l, { entered: true }) });
}

function lotteryResult(state, msg) {
  const l = state.lottery;
  if (!l || l.id !== msg.id) return state;
  const won = state.me !== null && (msg.winners || []).indexOf(state.me) >= 0;
  return Object.assign({}, state, { lottery: Object.assign({}, l, { result: won ? 'won' : 'lost', entries: msg.entries }) });
}

function closeLottery(state) {
  return Object.assign({}, state, { lottery: null });
}

/** A new sale on the shelf (or one announced again: keyed by id). */
function sale(state, s) {
  const card = saleCard(s);
  const others = state.sales.filter((x) => x.id !== s.id);
  return Object.assign({}, state, { sales: others.concat([card]) });
}

function stock(state, msg) {
  let changed = false;
  const sales = state.sales.map((x) => {
    if (x.id !== msg.id || x.left === msg.left) return x;
    changed = true;
    return Object.assign({}, x, { left: msg.left, soldOut: msg.left <= 0 });
  });
  return changed ? Object.assign({}, state, { sales }) : state;
}

/** Time passes: comments leave the screen, ended sales the shelf, countdown packets open. */
function tick(state, now) {
  let s = prune(state, now);
  const sales = s.sales.filter((x) => x.endsAt > now);
  if (sales.length !== s.sales.length) s = Object.assign({}, s, { sales });
  if (s.gap && s.gapUntil <= now) s = Object.assign({}, s, { gap: false });
  if (s.packet && s.packet.status === 'countdown' && s.packet.opensAt <= now) {
    s = Object.assign({}, s, { packet: Object.assign({}, s.packet, { status: 'open' }) });
  }
  return s;
}

/** The keys whose value changed: what setData needs (reducers replace what they change). */
function changes(prev, next) {
  const patch = {};
  let any = false;
  for (const key of Object.keys(next)) {
    if (key === 'laneFree' || prev[key] === next[key]) continue; // lanes are bookkeeping, not view
    patch[key] = next[key];
    any = true;
  }
  return any ? patch : null;
}

// -- sharing and reminders (docs/growth.md) -------------------------------------------

/** A share token as the server makes them: 16 URL-safe base64 characters. */
const TOKEN_RE = /^[A-Za-z0-9_-]{16}$/;

/** The share token this page was opened with (`inv` of the share path), or undefined. */
function inviteOf(query) {
  const inv = query && query.inv;
  return typeof inv === 'string' && TOKEN_RE.test(inv) ? inv : undefined;
}

/**
 * What onShareAppMessage returns: the room's title and this page's path with the viewer's
 * own share token (none yet: the path alone, still a working share, just not attributed).
 */
function shareMessage(state, roomId, token) {
  let path = '/pages/room/room?roomId=' + encodeURIComponent(roomId);
  if (typeof token === 'string' && TOKEN_RE.test(token)) path += '&inv=' + token;
  return { title: state.title || '直播间', path };
}

/** The toast after the subscribe dialog: what the user agreed to. */
function reminded(result) {
  return result.accepted.length > 0 ? '开播前会提醒你' : '未开启提醒';
}

module.exports = {
  inviteOf,
  shareMessage,
  reminded,
  LANES,
  MAX_DANMAKU,
  SCROLL_MS,
  FIXED_MS,
  initialState,
  colorOf,
  yuan,
  pickLane,
  addComment,
  retract,
  welcome,
  gap,
  connection,
  online,
  like,
  tapLike,
  room,
  notice,
  redPacket,
  grabbed,
  packetDone,
  closePacket,
  lottery,
  entered,
  lotteryResult,
  closeLottery,
  sale,
  stock,
  tick,
  changes,
};

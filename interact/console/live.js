// The room's live feed: a WebSocket opened with a one-minute ticket, resumed after drops.
import { api } from './api.js';

const PING_MS = 20000; // well inside the server's idle timeout (70 s)
const MAX_BACKOFF_MS = 10000;
// Closes after which reconnecting cannot help (docs/protocol.md §7).
const FINAL = new Set([4001, 4003, 4004]);

export class LiveSocket {
  /** `onMessage(msg)` for every server message; `onState(state, detail)` for
   * connecting / live / retry / closed. */
  constructor(roomId, { onMessage, onState }) {
    this.roomId = roomId;
    this.onMessage = onMessage;
    this.onState = onState;
    this.seq = null;
    this.epoch = null;
    // How far the room's numbering moved while watched: comments per second come from it.
    this.numbered = 0;
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.timer = null;
    this.ping = null;
  }

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ping);
    if (this.ws) this.ws.close(1000);
  }

  retry() {
    if (this.stopped) return;
    this.onState('retry');
    // Full jitter: many consoles dropped at once do not come back in step.
    const cap = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), Math.random() * cap);
  }

  async connect() {
    if (this.stopped) return;
    this.onState('connecting');
    let ticket;
    try {
      ticket = (await api('POST', '/auth/ticket')).ticket;
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        this.onState('closed', err);
        return;
      }
      this.retry();
      return;
    }
    if (this.stopped) return;
    const query = new URLSearchParams({ room: this.roomId, token: ticket });
    if (this.seq !== null && this.epoch !== null) {
      query.set('since', String(this.seq));
      query.set('epoch', this.epoch);
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/ws?${query}`);
    this.ws = ws;
    ws.addEventListener('message', (event) => {
      let batch;
      try {
        batch = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!Array.isArray(batch)) return;
      for (const msg of batch) this.handle(msg);
    });
    ws.addEventListener('close', (event) => {
      clearInterval(this.ping);
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      if (FINAL.has(event.code)) this.onState('closed', { code: event.code, reason: event.reason });
      else this.retry();
    });
    this.ping = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send('{"t":"ping"}');
    }, PING_MS);
  }

  handle(msg) {
    if (msg.t === 'welcome') {
      this.attempt = 0;
      // After a reconnect in the same numbering, what was missed still counts.
      if (msg.epoch === this.epoch && this.seq !== null) this.numbered += Math.max(0, msg.seq - this.seq);
      this.epoch = msg.epoch;
      this.seq = msg.seq;
      this.onState('live');
    } else if (msg.t === 'dm' && typeof msg.seq === 'number') {
      if (this.seq === null || msg.seq > this.seq) {
        if (this.seq !== null) this.numbered += msg.seq - this.seq;
        this.seq = msg.seq;
      }
    }
    this.onMessage(msg);
  }
}

'use strict';
/**
 * The example's app: where the server is, and a WeChat login through the SDK whose token
 * every page's getToken hands out (logging in again when it is about to expire).
 */
const { login } = require('interact-miniprogram');

/** Log in again this long before the token expires. */
const RENEW_MS = 60 * 60 * 1000;

App({
  globalData: {
    // Both domains must be on the mini-program's request and socket whitelists.
    apiUrl: 'https://live.example.com',
    wsUrl: 'wss://live.example.com',
    roomId: 'r0521ea7d0b55',
    // The server's INTERACT_REMINDER_TEMPLATES (subscribe-message template ids, at most 3).
    reminderTemplates: ['tplStartSoon'],
  },

  /** A valid token, from a login shared by every caller while it is under way. */
  token() {
    const s = this.session;
    if (s && (s.expiresAt === null || s.expiresAt - Date.now() > RENEW_MS)) return Promise.resolve(s.token);
    if (!this.loggingIn) {
      this.loggingIn = login({ baseUrl: this.globalData.apiUrl }).then(
        (session) => {
          this.session = session;
          this.loggingIn = null;
          return session.token;
        },
        (err) => {
          this.loggingIn = null;
          throw err;
        },
      );
    }
    return this.loggingIn;
  },
});

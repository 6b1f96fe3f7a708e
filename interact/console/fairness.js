// Re-running a lottery draw in the page, exactly as docs/fairness.md and
// `interact verify-lottery` define it, with Web Crypto (SHA-256, HMAC-SHA256).
const encoder = new TextEncoder();
const HEX_SECRET = /^[0-9a-fA-F]{64}$/;
const HEX_DIGEST = /^[0-9a-fA-F]{64}$/;

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function sha256(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

/** Code-point order, as Python sorts str: JavaScript's default sort compares UTF-16 code
 * units, which differs for characters beyond the Basic Multilingual Plane. */
export function byCodePoint(a, b) {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i += 1) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Hex sha256 of the distinct uids, sorted by code point, joined by "\n", in UTF-8. */
export async function listSha256(uids) {
  return sha256(encoder.encode([...new Set(uids)].sort(byCodePoint).join('\n')));
}

async function rankKeys(secret, lotteryId, uids) {
  const key = await crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const out = new Map();
  for (const uid of uids) {
    out.set(uid, hex(await crypto.subtle.sign('HMAC', key, encoder.encode(`${lotteryId}:${uid}`))));
  }
  return out;
}

function ranked(keys) {
  // Keys are 64 lowercase hex digits: string order is the MAC's numeric order.
  return [...keys.keys()].sort((a, b) => {
    const ka = keys.get(a);
    const kb = keys.get(b);
    if (ka !== kb) return ka < kb ? -1 : 1;
    return byCodePoint(a, b);
  });
}

function check(name, status, message) {
  return { name, status, message };
}

async function hashCheck(name, what, computed, published) {
  if (published === null || published === undefined || published === '') {
    return check(name, 'skip', `no published ${name} given`);
  }
  if (!HEX_DIGEST.test(published)) return check(name, 'fail', `published ${name} is not 64 hex digits`);
  if (published.toLowerCase() !== computed) {
    return check(name, 'fail', `mismatch: ${what} hashes to ${computed}, published ${published}`);
  }
  return check(name, 'pass', `${what} hashes to ${computed}`);
}

/** Every check of one verification, the recomputed winners, and whether none failed.
 * `priorWinners` (uids) only for a `new_first` lottery. */
export async function verifyDraw({
  commit,
  secret: secretHex,
  lotteryId,
  entrants,
  winners,
  expectedWinners = null,
  entriesSha256 = null,
  priorWinners = null,
  priorWinnersSha256 = null,
}) {
  const checks = [];
  let secret = null;
  if (!HEX_SECRET.test(secretHex)) {
    checks.push(check('secret', 'fail', `secret must be 64 hex digits (32 bytes), got ${secretHex.length} characters`));
  } else {
    secret = fromHex(secretHex);
    checks.push(check('secret', 'pass', '32 bytes'));
  }
  if (secret === null) {
    checks.push(check('commit', 'skip', 'not checked: no usable secret'));
  } else {
    const computed = await sha256(secret);
    if (!HEX_DIGEST.test(commit)) checks.push(check('commit', 'fail', 'commit is not 64 hex digits'));
    else if (commit.toLowerCase() !== computed) {
      checks.push(
        check('commit', 'fail', `mismatch: sha256(secret) is ${computed}, the published commit is ${commit.toLowerCase()}; this secret is not the one committed to`),
      );
    } else checks.push(check('commit', 'pass', `sha256(secret) = ${computed}`));
  }
  const done = (found) => ({ checks, winners: found, ok: checks.every((c) => c.status !== 'fail') });

  const unique = [...new Set(entrants)];
  const bad = unique.find((uid) => typeof uid !== 'string' || uid === '' || uid.includes('\n'));
  if (!lotteryId || !Number.isInteger(winners) || winners < 1 || bad !== undefined) {
    checks.push(check('inputs', 'fail', 'a lottery id, a positive number of winners and non-empty uids are needed'));
    return done([]);
  }
  checks.push(await hashCheck('entries_sha256', `the entry list (${unique.length} distinct uids)`, await listSha256(unique), entriesSha256));

  let prior = null;
  if (priorWinners !== null) {
    const set = new Set(priorWinners);
    prior = new Set(unique.filter((uid) => set.has(uid)));
    checks.push(
      await hashCheck('prior_winners_sha256', `the prior winners who entered (${prior.size})`, await listSha256(prior), priorWinnersSha256),
    );
  } else if (priorWinnersSha256) {
    checks.push(check('prior_winners_sha256', 'fail', 'an exclude-first draw needs the prior winners to recompute'));
    return done([]);
  }

  if (secret === null) {
    checks.push(check('winners', 'skip', 'not checked: no usable secret'));
    return done([]);
  }
  const keys = await rankKeys(secret, lotteryId, unique);
  let order;
  if (prior === null) order = ranked(keys);
  else {
    const fresh = new Map([...keys].filter(([uid]) => !prior.has(uid)));
    const again = new Map([...keys].filter(([uid]) => prior.has(uid)));
    order = [...ranked(fresh), ...ranked(again)];
  }
  const computed = order.slice(0, winners);
  if (expectedWinners === null) checks.push(check('winners', 'skip', 'no published winners given'));
  else {
    const published = new Set(expectedWinners);
    const drawn = new Set(computed);
    const missing = computed.filter((uid) => !published.has(uid));
    const extra = expectedWinners.filter((uid) => !drawn.has(uid));
    if (published.size !== expectedWinners.length) checks.push(check('winners', 'fail', 'published winners repeat'));
    else if (missing.length || extra.length) {
      checks.push(
        check('winners', 'fail', `mismatch: the draw gives ${computed.join(',')}; published ${expectedWinners.join(',')}`),
      );
    } else checks.push(check('winners', 'pass', `${computed.length} winners match the draw`));
  }
  return done(computed);
}

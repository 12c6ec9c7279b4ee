// End-to-end test of webhooks (issue 12): Latchkey POSTs events to a receiver
// of this test's, signed in the Standard Webhooks form, retries what is not
// accepted, and the admin console manages the endpoints.
//
// - A node:http receiver on 127.0.0.1 (a port the OS picks) records each
//   request (method, path, headers, raw body) and answers 200, or 503 when
//   told to.
// - Latchkey runs embedded with outbound.allow_loopback = true (the
//   outbound client refuses loopback otherwise); `latchkey webhook create
//   --event '*'` points an endpoint at the receiver.
// - A user signs up at /signup (user.created), signs in with a wrong
//   password (signin.failed) and the right one (signin.succeeded), and is
//   deleted with the CLI (user.deleted): each event is waited for.
// - Every request is verified with the `standardwebhooks` package (the
//   reference implementation): the signature holds and gives the payload;
//   the types, the user, the event ids (unique, the same as webhook-id) are
//   checked. The same library refuses a tampered body, a wrong secret and a
//   timestamp moved an hour back.
// - Retry: the receiver answers 503; `webhook deliveries --json` logs the
//   attempt as retrying; answered 200, the retry comes about 5 s later with
//   the same webhook-id and body, and the log says delivered.
// - Console: an admin signs in with a password and a new authenticator app,
//   adds an endpoint on /admin/webhooks (the secret shown once, not again),
//   opens it, sees its Deliveries table fill, rotates its secret (the old
//   one stops signing at once) and deletes it. Screenshots go to
//   screenshots/ (prefix webhooks-).
//
// Run: cd tests/e2e && npm ci && node --test webhooks.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import { chromium } from 'playwright-core';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import {
  ACTION_TIMEOUT_MS,
  CHROMIUM,
  CHROMIUM_ARGS,
  Server,
  VIEWPORTS,
  fillSignIn,
  guardProcess,
  pathOf,
  runSteps,
  screenshot,
  signInAdminSettingUpTotp,
  sleep,
  watchPage,
} from './lib.mjs';

const STAMP = Date.now().toString(36);
// Lower case: events carry the normalised address.
const USER = { email: `hook-user-${STAMP}@example.com`, name: 'Grace Hopper', password: 'copper kettle marmalade lighthouse' };
const RETRY_USER = { email: `hook-retry-${STAMP}@example.com`, password: 'walnut harbour violet saddle' };
const ROTATE_USER = { email: `hook-rotate-${STAMP}@example.com`, password: 'pepper meadow quartz lantern' };
const ADMIN = { email: `hook-admin-${STAMP}@example.com`, password: 'granite lantern orchard compass' };
const EVENT_TYPES = [
  'user.created',
  'user.updated',
  'user.deleted',
  'signin.succeeded',
  'signin.failed',
  'mfa.added',
  'mfa.removed',
  'session.revoked',
  'consent.revoked',
];
// How long a webhook may take to arrive: the worker wakes every second.
const DELIVERY_DEADLINE_MS = 15_000;
// The first retry waits 5 s.
const FIRST_RETRY_MS = 5_000;
// The browser reaches localhost over IPv6 or IPv4.
const LOOPBACK = /^(::1|127\.0\.0\.1)$/;
const SECRET_RE = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

// ------------------------------------------------------------------ the receiver

/**
 * A webhook receiver: records every request as { method, path, headers, raw
 * (Buffer), status (what it answered), at (ms) } and answers `status`
 * (200 unless set otherwise).
 */
async function startReceiver() {
  const received = [];
  const r = {
    received,
    status: 200,
    url: '',
    /** The first request at or after index `from` that `match` takes, waited for. */
    async waitFor(match, what, { from = 0, timeout = DELIVERY_DEADLINE_MS } = {}) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const found = received.slice(from).find(match);
        if (found) return found;
        if (Date.now() > deadline) {
          const seen = received.map((q) => `${q.method} ${q.path} ${q.status} ${q.raw.toString('utf8').slice(0, 120)}`);
          throw new Error(`no ${what} within ${timeout} ms; received:\n${seen.join('\n') || '(nothing)'}`);
        }
        await sleep(50);
      }
    },
  };
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const status = r.status;
      received.push({
        method: req.method,
        path: req.url,
        headers: { ...req.headers },
        raw: Buffer.concat(chunks),
        status,
        at: Date.now(),
      });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'try later');
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  r.url = `http://127.0.0.1:${srv.address().port}`;
  r.close = () =>
    new Promise((resolve) => {
      srv.close(() => resolve());
      srv.closeAllConnections();
    });
  return r;
}

/** A request's body as JSON (no verification), or null. */
function bodyOf(q) {
  try {
    return JSON.parse(q.raw.toString('utf8'));
  } catch {
    return null;
  }
}

const isEvent = (path, type, email) => (q) => {
  if (q.path !== path) return false;
  const b = bodyOf(q);
  return b?.type === type && (email === undefined || b?.data?.email === email);
};

/** The headers `standardwebhooks` reads, as received. */
const signed = (q) => ({
  'webhook-id': q.headers['webhook-id'],
  'webhook-timestamp': q.headers['webhook-timestamp'],
  'webhook-signature': q.headers['webhook-signature'],
});

/** Verifies `q` with `secret` through standardwebhooks; resolves to the payload. */
function verified(q, secret) {
  try {
    return new Webhook(secret).verify(q.raw, signed(q));
  } catch (e) {
    e.message += ` (webhook-id ${q.headers['webhook-id']}, signature ${q.headers['webhook-signature']})`;
    throw e;
  }
}

/** That standardwebhooks refuses `payload` with `headers` and `secret`, with a message like `reason`. */
function refused(secret, payload, headers, reason) {
  assert.throws(
    () => new Webhook(secret).verify(payload, headers),
    (e) => e instanceof WebhookVerificationError && reason.test(e.message),
  );
}

// ------------------------------------------------------------------ the test

describe('webhooks: signed deliveries, retries and the console', { timeout: 240_000 }, () => {
  const server = new Server({ env: { LATCHKEY_OUTBOUND__ALLOW_LOOPBACK: 'true' } });
  let releaseProcess = () => {};
  let receiver;
  let hook; // the CLI's endpoint: `webhook create --json`
  let browser;
  const pages = {};
  const problems = [];
  const documents = { user: [], admin: [] };
  const sideways = [];

  async function newPage(key) {
    const context = await browser.newContext({ viewport: VIEWPORTS.desktop, baseURL: server.url });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
    const p = await context.newPage();
    watchPage(p, problems, documents[key]);
    pages[key] = p;
    return p;
  }

  /** The screenshots of `name`, and whether the page scrolls sideways at the phone's width. */
  async function shoot(p, name) {
    await screenshot(p, name);
    const original = p.viewportSize();
    await p.setViewportSize(VIEWPORTS.phone);
    const extra = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await p.setViewportSize(original);
    if (extra > 0) sideways.push(`${name} (${pathOf(p)}): ${extra} px wider than the phone`);
  }

  /** The body rows of the list table in `scope`, each as its cells' trimmed texts. */
  async function tableRows(scope) {
    const rows = await scope.locator('table.list tbody tr').all();
    return Promise.all(rows.map(async (r) => (await r.locator('td').allInnerTexts()).map((t) => t.trim())));
  }

  const deliveries = (id) => server.cliJson(['webhook', 'deliveries', id, '--json']);

  /** Polls `webhook deliveries ID --json` until an attempt matches; resolves to the whole log. */
  async function waitForAttempt(id, match, what, timeout = DELIVERY_DEADLINE_MS) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const log = await deliveries(id);
      if (log.some(match)) return log;
      if (Date.now() > deadline) throw new Error(`no ${what} in the log within ${timeout} ms:\n${JSON.stringify(log, null, 1)}`);
      await sleep(100);
    }
  }

  before(async () => {
    releaseProcess = guardProcess(server);
    receiver = await startReceiver();
    await server.start();
    await server.cliJson(
      ['user', 'create', '--email', ADMIN.email, '--admin', '--verified', '--password-stdin', '--json'],
      { input: `${ADMIN.password}\n` },
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await receiver?.close();
      await server.stop();
      await server.removeDir();
      releaseProcess();
    }
  });

  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);
  const CLI_PATH = '/hooks/cli';
  const CONSOLE_PATH = '/hooks/console';

  // ---------------------------------------------------------- the CLI's endpoint

  step('`webhook create --event * --json` gives an endpoint for every event type and a whsec_ secret', async () => {
    hook = await server.cliJson([
      'webhook', 'create', '--url', `${receiver.url}${CLI_PATH}`, '--event', '*', '--description', 'CLI receiver', '--json',
    ]);
    assert.equal(hook.url, `${receiver.url}${CLI_PATH}`);
    assert.equal(hook.description, 'CLI receiver');
    assert.deepEqual(hook.events, EVENT_TYPES, '* is every event type');
    assert.equal(hook.enabled, true);
    assert.ok(hook.id && hook.created_at && hook.updated_at, JSON.stringify(hook));
    assert.match(hook.secret, SECRET_RE);
    assert.equal(Buffer.from(hook.secret.slice('whsec_'.length), 'base64').length, 32, 'a 256-bit key');
    const listed = await server.cliJson(['webhook', 'list', '--json']);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].id, hook.id);
    assert.equal(listed[0].secret, undefined, 'the list never shows the secret');
    assert.ok(!JSON.stringify(listed).includes(hook.secret.slice('whsec_'.length)));
    assert.deepEqual(await deliveries(hook.id), [], 'nothing sent yet');
  });

  // ---------------------------------------------------------- events of a user

  const mine = {}; // event type → the request that brought the user's event
  let userAgent;

  step('signing up at /signup sends user.created', async () => {
    const p = await newPage('user');
    userAgent = await p.evaluate(() => navigator.userAgent);
    await p.goto('/signup');
    await p.getByRole('heading', { name: 'Create an account' }).waitFor();
    await p.getByLabel('Name', { exact: true }).fill(USER.name);
    await p.getByLabel('Email', { exact: true }).fill(USER.email);
    await p.getByLabel('Password', { exact: true }).fill(USER.password);
    await p.getByRole('button', { name: 'Create account', exact: true }).click();
    await p.getByRole('heading', { name: 'Check your email' }).waitFor();
    mine['user.created'] = await receiver.waitFor(isEvent(CLI_PATH, 'user.created', USER.email), 'user.created for the user');
  });

  step('a wrong password at /login sends signin.failed', async () => {
    const p = pages.user;
    await p.goto('/login');
    await fillSignIn(p, { email: USER.email, password: 'not the password at all' });
    await p.getByRole('alert').waitFor();
    assert.equal(pathOf(p), '/login');
    mine['signin.failed'] = await receiver.waitFor(isEvent(CLI_PATH, 'signin.failed', USER.email), 'signin.failed for the user');
  });

  step('the right password sends signin.succeeded', async () => {
    const p = pages.user;
    await fillSignIn(p, USER);
    await p.waitForURL((u) => u.pathname === '/account');
    mine['signin.succeeded'] = await receiver.waitFor(
      isEvent(CLI_PATH, 'signin.succeeded', USER.email),
      'signin.succeeded for the user',
    );
  });

  step('`user delete` with the CLI sends user.deleted', async () => {
    // Its user_id: that of the account, as the earlier events named it.
    const userId = bodyOf(mine['user.created']).data.user_id;
    const from = receiver.received.length;
    await server.cli(['user', 'delete', USER.email]);
    mine['user.deleted'] = await receiver.waitFor(isEvent(CLI_PATH, 'user.deleted'), 'user.deleted', { from });
    const { data } = bodyOf(mine['user.deleted']);
    // A receiver must be able to tell which account went.
    assert.ok(
      data.user_id === userId || data.email === USER.email,
      `user.deleted names the account (user_id ${userId} or ${USER.email}): ${JSON.stringify(data)}`,
    );
  });

  step('every request verifies with standardwebhooks and carries the event it says', async () => {
    const now = Date.now();
    const ids = new Set();
    for (const q of receiver.received) {
      assert.equal(q.method, 'POST');
      assert.equal(q.path, CLI_PATH);
      assert.match(q.headers['content-type'] ?? '', /^application\/json/);
      assert.match(q.headers['webhook-id'] ?? '', /^msg_[A-Za-z0-9_-]+$/);
      assert.match(q.headers['webhook-signature'] ?? '', /^v1,[A-Za-z0-9+/]+={0,2}( |$)/);
      const ts = Number(q.headers['webhook-timestamp']);
      assert.ok(Number.isInteger(ts) && Math.abs(ts * 1000 - q.at) < 10_000, `webhook-timestamp ${ts} is when it was sent`);
      const payload = verified(q, hook.secret);
      assert.deepEqual(payload, bodyOf(q), 'verify() gives the body');
      assert.ok(EVENT_TYPES.includes(payload.type), `a known type: ${payload.type}`);
      assert.equal(payload.data.event_id, q.headers['webhook-id'], 'data.event_id is the webhook-id');
      const at = Date.parse(payload.timestamp);
      assert.ok(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(payload.timestamp) && at <= now && now - at < 120_000,
        `an RFC 3339 timestamp of the last minutes: ${payload.timestamp}`);
      for (const k of ['audit_id', 'action', 'outcome', 'actor']) assert.ok(payload.data[k], `data.${k} in ${JSON.stringify(payload)}`);
      assert.ok(!ids.has(q.headers['webhook-id']), `webhook-id ${q.headers['webhook-id']} is not repeated`);
      ids.add(q.headers['webhook-id']);
    }

    const order = ['user.created', 'signin.failed', 'signin.succeeded', 'user.deleted'];
    const sent = order.map((t) => bodyOf(mine[t]));
    assert.deepEqual(sent.map((b) => b.type), order);
    const userId = sent[0].data.user_id;
    assert.ok(userId, 'user.created names the account');
    for (const b of sent) assert.equal(b.data.email, USER.email, `${b.type}: data.email is the user's`);
    // What the user did on the pages names their browser (docs/webhooks.md);
    // user.created by /signup too: see its own test below.
    for (const b of sent.slice(1, 3)) {
      assert.match(b.data.client_addr ?? '', LOOPBACK, `${b.type}: the browser's address`);
      assert.equal(b.data.user_agent, userAgent, `${b.type}: the browser's user agent`);
    }
    assert.equal(sent[3].data.actor, 'cli');
    assert.equal(sent[3].data.user_id, userId, 'user.deleted names the same account');
    assert.equal(sent[1].data.outcome, 'failed');
    assert.equal(sent[2].data.user_id, userId, 'signin.succeeded names the same account');
    assert.equal(sent[2].data.outcome, 'ok');
    // The user's own events, every one of them: nothing else about them was sent.
    const theirs = receiver.received.map(bodyOf).filter((b) => b.data.email === USER.email || b.data.user_id === userId);
    assert.deepEqual(theirs.map((b) => b.type), order, 'the user\'s events, in order');
  });

  step('standardwebhooks refuses a tampered body, a wrong secret and an hour-old timestamp', async () => {
    const q = mine['signin.succeeded'];
    const headers = signed(q);
    // Tampered: one character of the body changed, then a field re-written.
    const raw = q.raw.toString('utf8');
    refused(hook.secret, raw.replace(USER.email, USER.email.replace('hook-', 'hook_')), headers, /No matching signature/);
    refused(hook.secret, `${raw} `, headers, /No matching signature/);
    // Signed with another key.
    const other = `whsec_${crypto.randomBytes(32).toString('base64')}`;
    refused(other, q.raw, headers, /No matching signature/);
    // The same signature with the timestamp moved an hour back (a replay).
    const stale = String(Number(headers['webhook-timestamp']) - 3600);
    refused(hook.secret, q.raw, { ...headers, 'webhook-timestamp': stale }, /too old/);
    // And the genuine request still passes.
    assert.equal(verified(q, hook.secret).type, 'signin.succeeded');
  });

  // ---------------------------------------------------------- retry

  let retried; // { first, second } requests of the retried event
  step('answered 503, an event is logged `retrying`; answered 200, the retry (≈5 s later) has the same webhook-id', async () => {
    receiver.status = 503;
    const from = receiver.received.length;
    await server.cliJson(
      ['user', 'create', '--email', RETRY_USER.email, '--verified', '--password-stdin', '--json'],
      { input: `${RETRY_USER.password}\n` },
    );
    const first = await receiver.waitFor(isEvent(CLI_PATH, 'user.created', RETRY_USER.email), 'user.created (answered 503)', { from });
    assert.equal(first.status, 503);
    const msgId = first.headers['webhook-id'];
    // The log must say so before the retry is due.
    const log = await waitForAttempt(hook.id, (a) => a.event_id === msgId, `attempt of ${msgId}`, FIRST_RETRY_MS - 1_000);
    const logged = log.filter((a) => a.event_id === msgId);
    assert.equal(logged.length, 1, JSON.stringify(logged));
    assert.equal(logged[0].outcome, 'retrying');
    assert.equal(logged[0].attempt, 1);
    assert.equal(logged[0].status, 503);
    assert.equal(logged[0].event_type, 'user.created');
    assert.match(logged[0].error ?? '', /503/);
    receiver.status = 200;

    const second = await receiver.waitFor(
      (q) => q !== first && q.headers['webhook-id'] === msgId,
      `the retry of ${msgId}`,
      { from, timeout: FIRST_RETRY_MS + DELIVERY_DEADLINE_MS },
    );
    assert.equal(second.status, 200, 'the retry came after the receiver was set to 200');
    const gap = second.at - first.at;
    assert.ok(gap >= FIRST_RETRY_MS - 500 && gap < FIRST_RETRY_MS + 5_000, `the retry came ${gap} ms after the first attempt`);
    assert.ok(second.raw.equals(first.raw), 'the same body');
    assert.ok(
      Number(second.headers['webhook-timestamp']) > Number(first.headers['webhook-timestamp']),
      'signed anew, at the time of sending',
    );
    assert.equal(verified(first, hook.secret).type, 'user.created');
    assert.equal(verified(second, hook.secret).data.email, RETRY_USER.email);
    retried = { first, second, msgId };

    const after = await waitForAttempt(hook.id, (a) => a.event_id === msgId && a.outcome === 'delivered', `delivered ${msgId}`);
    assert.deepEqual(
      after.filter((a) => a.event_id === msgId).map((a) => [a.attempt, a.outcome, a.status]),
      [
        [2, 'delivered', 200],
        [1, 'retrying', 503],
      ],
      'newest first',
    );
    const sends = receiver.received.filter((q) => q.headers['webhook-id'] === msgId);
    assert.equal(sends.length, 2, 'sent twice, no more');
  });

  // ---------------------------------------------------------- the console

  const consoleHook = {}; // { id, secret, url }

  step('an admin signs in (password and a new authenticator app) and opens /admin/webhooks, listing the CLI\'s endpoint', async () => {
    const p = await newPage('admin');
    await p.goto('/admin/webhooks');
    await p.waitForURL((u) => u.pathname === '/login');
    assert.equal(new URL(p.url()).searchParams.get('next'), '/admin/webhooks');
    await signInAdminSettingUpTotp(p, ADMIN);
    if (pathOf(p) !== '/admin/webhooks') await p.goto('/admin/webhooks');
    await p.getByRole('heading', { name: 'Webhooks', exact: true }).waitFor();
    const nav = p.getByRole('navigation', { name: 'Admin console' });
    assert.equal(await nav.getByRole('link', { name: 'Webhooks' }).getAttribute('aria-current'), 'page');
    const rows = await tableRows(p);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.deepEqual(rows[0], [`${receiver.url}${CLI_PATH}\nCLI receiver`, EVENT_TYPES.join(', '), 'enabled']);
    await p.getByRole('heading', { name: 'Add an endpoint' }).waitFor();
    for (const t of EVENT_TYPES) assert.equal(await p.getByLabel(t, { exact: true }).isChecked(), false, `${t} starts unchecked`);
    await shoot(p, 'webhooks-list');
  });

  step('"Add webhook" makes the endpoint and shows its secret once, on the endpoint\'s page', async () => {
    const p = pages.admin;
    consoleHook.url = `${receiver.url}${CONSOLE_PATH}`;
    await p.getByLabel('URL', { exact: true }).fill(consoleHook.url);
    await p.getByLabel('Description', { exact: true }).fill('Console receiver');
    await p.getByLabel('user.deleted', { exact: true }).check();
    await p.getByLabel('signin.succeeded', { exact: true }).check();
    await p.getByRole('button', { name: 'Add webhook', exact: true }).click();
    // The form's answer is a redirect: a reload neither repeats it nor
    // shows the secret again.
    await p.waitForURL((u) => /^\/admin\/webhooks\/[A-Za-z0-9_-]+$/.test(u.pathname));
    const status = p.getByRole('status');
    await status.waitFor();
    assert.match(await status.innerText(), /Webhook created\./);
    const reveal = p.locator('#new-secret');
    assert.match(await reveal.innerText(), /shown once/);
    consoleHook.secret = (await reveal.locator('code').innerText()).trim();
    assert.match(consoleHook.secret, SECRET_RE);
    assert.notEqual(consoleHook.secret, hook.secret);
    const listed = (await server.cliJson(['webhook', 'list', '--json'])).find((w) => w.url === consoleHook.url);
    assert.ok(listed, 'webhook list --json has it');
    assert.deepEqual(listed.events, ['user.deleted', 'signin.succeeded']);
    assert.equal(listed.description, 'Console receiver');
    assert.equal(listed.enabled, true);
    consoleHook.id = listed.id;
    assert.equal(new URL(p.url()).pathname, `/admin/webhooks/${listed.id}`);
    await shoot(p, 'webhooks-created');
  });

  step('reloaded, the page shows the secret nowhere and nothing was made twice', async () => {
    const p = pages.admin;
    await p.reload();
    await p.getByRole('heading', { name: 'Deliveries' }).waitFor();
    assert.equal(await p.locator('#new-secret').count(), 0, 'no secret');
    assert.ok(!(await p.content()).includes(consoleHook.secret.slice('whsec_'.length)), 'the secret is nowhere on the page');
    await p.goto('/admin/webhooks');
    await p.getByRole('heading', { name: 'Add an endpoint' }).waitFor();
    assert.equal(await p.getByRole('status').count(), 0, 'no notice');
    const rows = await tableRows(p);
    assert.deepEqual(
      rows.map((r) => r[0].split('\n')[0]).sort(),
      [`${receiver.url}${CLI_PATH}`, consoleHook.url].sort(),
      'both endpoints listed',
    );
    assert.equal((await server.cliJson(['webhook', 'list', '--json'])).length, 2, 'still two endpoints');
  });

  step('its page shows the endpoint and "Nothing sent yet." under Deliveries', async () => {
    const p = pages.admin;
    await p.getByRole('link', { name: consoleHook.url }).click();
    await p.waitForURL((u) => u.pathname === `/admin/webhooks/${consoleHook.id}`);
    await p.getByRole('heading', { name: 'Webhook', exact: true }).waitFor();
    assert.equal(await p.getByLabel('URL', { exact: true }).inputValue(), consoleHook.url);
    assert.equal(await p.getByLabel('Description', { exact: true }).inputValue(), 'Console receiver');
    for (const t of EVENT_TYPES) {
      const want = t === 'user.deleted' || t === 'signin.succeeded';
      assert.equal(await p.getByLabel(t, { exact: true }).isChecked(), want, `${t} checked: ${want}`);
    }
    assert.equal(await p.getByRole('checkbox', { name: /^\s*Enabled \(/ }).isChecked(), true);
    const section = p.locator('section.card').filter({ has: p.getByRole('heading', { name: 'Deliveries' }) });
    assert.ok(await section.getByText('Nothing sent yet.').isVisible());
    for (const name of ['Save changes', 'Rotate secret', 'Delete webhook']) {
      assert.ok(await p.getByRole('button', { name, exact: true }).isVisible(), `a "${name}" button`);
    }
  });

  step('an event it subscribed to arrives signed with the secret the console showed, and fills its Deliveries table', async () => {
    const p = pages.admin;
    const from = receiver.received.length;
    await server.cli(['user', 'delete', RETRY_USER.email]);
    const q = await receiver.waitFor((r) => r.path === CONSOLE_PATH, 'a POST to the console\'s endpoint', { from });
    const payload = verified(q, consoleHook.secret);
    assert.equal(payload.type, 'user.deleted');
    refused(hook.secret, q.raw, signed(q), /No matching signature/);
    // The CLI's endpoint hears it too, under another webhook-id.
    const other = await receiver.waitFor(isEvent(CLI_PATH, 'user.deleted'), 'user.deleted at the CLI\'s endpoint', { from });
    assert.equal(verified(other, hook.secret).data.audit_id, payload.data.audit_id, 'the same audit event');
    await waitForAttempt(consoleHook.id, (a) => a.outcome === 'delivered', 'delivered attempt');

    await p.reload();
    const section = p.locator('section.card').filter({ has: p.getByRole('heading', { name: 'Deliveries' }) });
    const headers = (await section.locator('table.list thead th').allInnerTexts()).map((t) => t.trim());
    assert.deepEqual(headers, ['Event', 'Outcome', 'When', 'Attempt', 'Answer']);
    const rows = await tableRows(section);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.match(rows[0][2], /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/);
    assert.deepEqual(
      [rows[0][0], rows[0][1], rows[0][3], rows[0][4]],
      [`user.deleted\n${q.headers['webhook-id']}`, 'delivered', '1', '200'],
    );
    await shoot(p, 'webhook-detail');
  });

  step('the CLI\'s endpoint\'s page shows the retried event: retrying (503), then delivered', async () => {
    const p = pages.admin;
    await p.goto(`/admin/webhooks/${hook.id}`);
    const section = p.locator('section.card').filter({ has: p.getByRole('heading', { name: 'Deliveries' }) });
    const rows = (await tableRows(section)).filter((r) => r[0].endsWith(retried.msgId));
    assert.deepEqual(
      rows.map((r) => [r[3], r[1], r[4].split('\n')[0]]),
      [
        ['2', 'delivered', '200'],
        ['1', 'retrying', '503'],
      ],
    );
    assert.match(rows[1][4], /503\n.*503/s, 'the error is shown under the status');
    await shoot(p, 'webhook-detail-retries');
  });

  step('"Rotate secret" shows a new secret once; the next event is signed with it, not the old one', async () => {
    const p = pages.admin;
    await p.goto(`/admin/webhooks/${consoleHook.id}`);
    await p.getByRole('button', { name: 'Rotate secret', exact: true }).click();
    const status = p.getByRole('status');
    await status.waitFor();
    assert.match(await status.innerText(), /New secret: the old one no longer signs\./);
    assert.match(await p.locator('#new-secret').innerText(), /shown once/);
    const fresh = (await p.locator('#new-secret code').innerText()).trim();
    assert.match(fresh, SECRET_RE);
    assert.notEqual(fresh, consoleHook.secret);
    await shoot(p, 'webhook-rotated');
    await p.reload();
    await p.getByRole('heading', { name: 'Deliveries' }).waitFor();
    assert.equal(await p.locator('#new-secret').count(), 0);
    assert.ok(!(await p.content()).includes(fresh.slice('whsec_'.length)), 'the new secret is not shown again');

    await server.cliJson(
      ['user', 'create', '--email', ROTATE_USER.email, '--verified', '--password-stdin', '--json'],
      { input: `${ROTATE_USER.password}\n` },
    );
    const from = receiver.received.length;
    await server.cli(['user', 'delete', ROTATE_USER.email]);
    const q = await receiver.waitFor((r) => r.path === CONSOLE_PATH, 'user.deleted after rotation', { from });
    assert.equal(verified(q, fresh).type, 'user.deleted');
    refused(consoleHook.secret, q.raw, signed(q), /No matching signature/);
    consoleHook.secret = fresh;
  });

  step('"Delete webhook" removes it: "Webhook deleted.", the CLI\'s endpoint alone is left', async () => {
    const p = pages.admin;
    await p.getByRole('button', { name: 'Delete webhook', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/admin/webhooks' && u.searchParams.get('notice') === 'webhook-deleted');
    assert.equal((await p.getByRole('status').innerText()).trim(), 'Webhook deleted.');
    const rows = await tableRows(p);
    assert.deepEqual(rows.map((r) => r[0].split('\n')[0]), [`${receiver.url}${CLI_PATH}`]);
    const listed = await server.cliJson(['webhook', 'list', '--json']);
    assert.deepEqual(listed.map((w) => w.id), [hook.id]);
    const res = await p.goto(`/admin/webhooks/${consoleHook.id}`);
    assert.equal(res.status(), 404, 'its page is gone');
  });

  const run = runSteps(steps, {
    where: () =>
      Object.entries(pages)
        .map(([k, p]) => ` (page ${k}: ${p.url()})`)
        .join(''),
    server,
  });

  // docs/webhooks.md: data.client_addr is "the IP address of the browser, for
  // what users do on the pages (signing up, signing in, …)". Nobody is
  // signed in yet when an account is made, so the actor is anonymous.
  test('user.created from /signup names the browser (address and user agent)', (t) => {
    if (run.failed || !mine['user.created']) return t.skip('an earlier step failed');
    const { data } = bodyOf(mine['user.created']);
    assert.match(data.client_addr ?? '', LOOPBACK, `client_addr: ${JSON.stringify(data)}`);
    assert.equal(data.user_agent, userAgent);
    assert.equal(data.actor, 'anonymous');
  });

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no console page scrolls sideways at the phone\'s width', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(sideways, []);
  });

  test('no page answered an error status but the expected ones', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, {
      user: [],
      admin: [`GET /admin/webhooks/${consoleHook.id} 404`],
    });
  });
});

// Browser end-to-end test of the admin console (/admin), in headless Chromium.
// The acceptance criterion: an admin signs in with MFA, disables a
// user (whose session and tokens then stop working), creates a client and
// reads the audit log.
//
// - The CLI makes an admin, a user and a first-party confidential client,
//   "Demo Notes", whose redirect URI is a tiny callback server of this test's
//   (the app's back end is this test: it redeems the code at the token
//   endpoint itself, so it holds the tokens).
// - In browser A the user signs in to Demo Notes through /authorize (first
//   party: no consent; offline_access: a refresh token too); the access token
//   reads /userinfo, the refresh token gives new tokens, /account works, and
//   /admin/users answers 403 "Admins only".
// - In browser B the admin opens /admin: /login, then the password leads to
//   "Add a second step" (admins always need one) → "Set up authenticator app"
//   (the key read off the page, the code computed here with node:crypto) →
//   the recovery codes → "Continue" back to /admin, which lands on
//   /admin/users.
// - The admin searches for the user, opens them and clicks "Disable": the
//   notice says so. Browser A's /account then sends to /login (and the
//   password says the account is disabled), both access tokens get 401 at
//   /userinfo and the refresh token invalid_grant at the token endpoint.
// - A client with an http://evil.example.com redirect URI is refused with an
//   alert and nothing is made; a good one shows its client_id and
//   client_secret once (the secret works: a client_credentials token).
// - The audit log, filtered by the user's email, has a user.disabled row whose
//   actor is admin:<the admin's id, from `user list --json`>.
//
// No page logs a console error; none scrolls sideways at the phone's width
// (the console's tables scroll in their own box). Screenshots of the console
// pages go to screenshots/ (prefix admin-).
//
// Run: cd tests/e2e && npm ci && node --test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import { chromium } from 'playwright-core';
import {
  ACTION_TIMEOUT_MS,
  CHROMIUM,
  CHROMIUM_ARGS,
  Server,
  VIEWPORTS,
  escapeRe,
  guardProcess,
  pathOf,
  runSteps,
  screenshot,
  watchPage,
} from './lib.mjs';

const STAMP = Date.now().toString(36);
const ADMIN = {
  email: `admin-${STAMP}@example.com`,
  name: 'Margaret Hamilton',
  password: 'granite lantern orchard compass',
};
const USER = {
  email: `admin-user-${STAMP}@example.com`,
  name: 'Ada Lovelace',
  password: 'copper kettle marmalade lighthouse',
};
const APP = 'Demo Notes';
const NEW_CLIENT = {
  name: `Ledger ${STAMP}`,
  redirectUris: ['https://ledger.example.com/callback', 'http://localhost:8123/callback'],
  postLogout: 'https://ledger.example.com/signed-out',
};
const EVIL_CLIENT = { name: `Evil ${STAMP}`, redirectUri: 'http://evil.example.com/callback' };
const DISABLED_NOTICE = 'User disabled: their sessions and tokens have ended.';
const DISABLED_LOGIN = 'This account is disabled. Contact your administrator.';

// ------------------------------------------------------------------ TOTP (RFC 6238)

const STEP_SECONDS = 30;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 to bytes; spaces, dashes and padding are ignored. */
function base32Decode(text) {
  const clean = text.replace(/[\s=-]/g, '').toUpperCase();
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const i = BASE32.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)} in ${JSON.stringify(text)}`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The 6-digit HMAC-SHA1 code of `secret` (bytes) for 30-second step `step`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 1_000_000).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 1000 / STEP_SECONDS);

// ------------------------------------------------------------------ the app's back end

/**
 * Demo Notes' callback: a node:http server on a port the OS picks that
 * remembers the query of each /callback request and shows a plain page.
 */
async function startCallbackServer() {
  const received = [];
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/callback') {
      received.push(url.searchParams);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${APP}</title></head>
<body><h1>${APP}</h1><p>Signing you in…</p></body></html>
`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  return {
    redirectUri: `http://localhost:${port}/callback`,
    received,
    close: () =>
      new Promise((resolve) => {
        srv.close(() => resolve());
        srv.closeAllConnections();
      }),
  };
}

const form = (params) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(params),
});

// ------------------------------------------------------------------ the test

describe('the admin console in a browser', { timeout: 300_000 }, () => {
  const server = new Server();
  let releaseProcess = () => {};
  let callback;
  let app; // Demo Notes: { client_id, client_secret }
  let discovery;
  let ids; // email → user id, from `user list --json`
  let browser;
  const problems = [];
  // Error-status navigations, per browser.
  const documents = { user: [], admin: [] };
  const pages = {};
  // Pages wider than the phone's screen.
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

  /**
   * The screenshots of `name`, and whether the page scrolls sideways at the
   * phone's width (the console's tables scroll inside their own box).
   */
  async function shoot(p, name) {
    await screenshot(p, name);
    const original = p.viewportSize();
    await p.setViewportSize(VIEWPORTS.phone);
    const extra = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await p.setViewportSize(original);
    if (extra > 0) sideways.push(`${name} (${pathOf(p)}): ${extra} px wider than the phone`);
  }

  async function fillSignIn(p, user) {
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await p.getByLabel('Email', { exact: true }).fill(user.email);
    await p.getByLabel('Password', { exact: true }).fill(user.password);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** The body rows of the list table in `scope` (a page or a section), each as its cells' trimmed texts. */
  async function tableRows(scope) {
    const rows = await scope.locator('table.list tbody tr').all();
    return Promise.all(rows.map(async (r) => (await r.locator('td').allInnerTexts()).map((t) => t.trim())));
  }

  async function token(params) {
    const res = await fetch(discovery.token_endpoint, form(params));
    return { status: res.status, body: await res.json() };
  }

  async function userinfo(accessToken) {
    const res = await fetch(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
    const text = await res.text();
    return { status: res.status, challenge: res.headers.get('www-authenticate'), body: text };
  }

  /** The first client of `client list --json` that `match` takes, or undefined. */
  async function listedClient(match) {
    const list = await server.cliJson(['client', 'list', '--json']);
    return list.find(match);
  }

  before(async () => {
    releaseProcess = guardProcess(server);
    await server.start();
    for (const [u, admin] of [
      [ADMIN, true],
      [USER, false],
    ]) {
      const args = ['user', 'create', '--email', u.email, '--name', u.name, '--verified', '--password-stdin', '--json'];
      await server.cliJson(admin ? [...args, '--admin'] : args, { input: `${u.password}\n` });
    }
    const users = await server.cliJson(['user', 'list', '--json']);
    ids = Object.fromEntries(users.map((u) => [u.email, u.id]));
    assert.ok(ids[ADMIN.email] && ids[USER.email], `user list --json lists both: ${JSON.stringify(users)}`);
    assert.equal(users.find((u) => u.email === ADMIN.email).admin, true);
    callback = await startCallbackServer();
    app = await server.cliJson([
      'client', 'create', '--name', APP, '--redirect-uri', callback.redirectUri, '--first-party', '--json',
    ]);
    assert.ok(app.client_id && app.client_secret, `a confidential client: ${JSON.stringify(app)}`);
    discovery = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await callback?.close();
      await server.stop();
      await server.removeDir();
      releaseProcess();
    }
  });

  // Each step leaves the browsers where the next one starts.
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);

  // ---------------------------------------------------------- the user, browser A

  let tokens; // the user's first token response
  step('the user signs in to Demo Notes (first party, no consent) and the app gets their tokens', async () => {
    const p = await newPage('user');
    const verifier = crypto.randomBytes(32).toString('base64url');
    const state = crypto.randomBytes(16).toString('base64url');
    const url = new URL(discovery.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: app.client_id,
      redirect_uri: callback.redirectUri,
      scope: 'openid profile email offline_access',
      state,
      nonce: crypto.randomBytes(16).toString('base64url'),
      code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    await p.goto(url.href);
    await p.waitForURL((u) => u.pathname === '/login');
    assert.ok(await p.getByText(`to continue to ${APP}`, { exact: true }).isVisible(), 'the sign-in page names the app');
    await fillSignIn(p, USER);
    await p.waitForURL((u) => u.href.startsWith(callback.redirectUri));
    await p.getByRole('heading', { name: APP }).waitFor();
    assert.equal(callback.received.length, 1, 'one callback');
    const back = callback.received[0];
    assert.equal(back.get('state'), state);
    assert.equal(back.get('iss'), server.url);
    assert.ok(back.get('code'), `a code: ${back}`);

    const { status, body } = await token({
      grant_type: 'authorization_code',
      code: back.get('code'),
      redirect_uri: callback.redirectUri,
      code_verifier: verifier,
      client_id: app.client_id,
      client_secret: app.client_secret,
    });
    assert.equal(status, 200, `token response: ${JSON.stringify(body)}`);
    assert.match(body.token_type, /^bearer$/i);
    assert.ok(body.access_token && body.id_token, 'an access token and an ID token');
    assert.ok(body.refresh_token, `offline_access gives a first-party app a refresh token: ${JSON.stringify(body)}`);
    tokens = body;
    const info = await userinfo(tokens.access_token);
    assert.equal(info.status, 200, `userinfo: ${info.body}`);
    const claims = JSON.parse(info.body);
    assert.equal(claims.sub, ids[USER.email], 'the subject is the user');
    assert.equal(claims.email, USER.email);
  });

  let refreshed; // the token response to the refresh token
  step('the refresh token gives new tokens, which read /userinfo too', async () => {
    const { status, body } = await token({
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: app.client_id,
      client_secret: app.client_secret,
    });
    assert.equal(status, 200, `refresh: ${JSON.stringify(body)}`);
    assert.ok(body.access_token && body.refresh_token, 'a new access token and refresh token');
    refreshed = body;
    assert.equal((await userinfo(refreshed.access_token)).status, 200);
  });

  step('the user\'s /account works; /admin and /admin/users answer 403 "Admins only"', async () => {
    const p = pages.user;
    await p.goto('/account');
    await p.getByRole('heading', { name: USER.name }).waitFor();
    assert.ok(await p.getByText(USER.email, { exact: true }).isVisible(), 'the account page shows the email');
    for (const path of ['/admin', '/admin/users']) {
      const res = await p.goto(path);
      assert.equal(res.status(), 403, `${path} for a non-admin`);
      assert.equal(pathOf(p), path, 'no redirect');
      await p.getByRole('heading', { name: 'Admins only' }).waitFor();
      assert.match(await p.getByRole('alert').innerText(), /for administrators/);
      assert.equal(await p.getByRole('navigation', { name: 'Admin console' }).count(), 0, 'no console navigation');
      assert.equal(await p.getByText(ADMIN.email).count(), 0, 'no user is listed');
    }
    assert.equal(await p.getByRole('link', { name: 'Back to your account' }).getAttribute('href'), '/account');
    await shoot(p, 'admin-forbidden');
  });

  // ---------------------------------------------------------- the admin, browser B

  step('the admin opening /admin is sent to /login; the password leads to "Add a second step"', async () => {
    const p = await newPage('admin');
    await p.goto('/admin');
    await p.waitForURL((u) => u.pathname === '/login');
    assert.equal(new URL(p.url()).searchParams.get('next'), '/admin');
    await fillSignIn(p, ADMIN);
    await p.waitForURL((u) => u.pathname === '/login/mfa');
    assert.equal(new URL(p.url()).searchParams.get('next'), '/admin');
    await p.getByRole('heading', { name: 'Add a second step' }).waitFor();
    assert.equal((await p.locator('section.card .lede').innerText()).trim(), `Signing in as ${ADMIN.email}`);
    assert.ok(await p.getByRole('link', { name: 'Set up authenticator app' }).isVisible());
    // Not signed in yet: the console sends elsewhere (asked with this
    // browser's cookies beside the page).
    const peek = await p.context().request.get('/admin/users', { maxRedirects: 0 });
    assert.equal(peek.status(), 303, 'no session before the second step');
    assert.match(peek.headers().location, /^\/login/);
  });

  step('"Set up authenticator app": the code of the app gives the recovery codes', async () => {
    const p = pages.admin;
    await p.getByRole('link', { name: 'Set up authenticator app' }).click();
    await p.waitForURL((u) => u.pathname === '/login/mfa/totp');
    await p.getByRole('heading', { name: 'Set up authenticator app' }).waitFor();
    const text = (await p.locator('p.secret code').innerText()).trim();
    assert.match(text, /^[A-Z2-7 ]+=*$/, `a base32 key: ${text}`);
    const secret = base32Decode(text);
    await p.getByLabel('Code', { exact: true }).fill(totp(secret, stepNow()));
    await p.getByRole('button', { name: 'Verify', exact: true }).click();
    await p.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    const codes = await p.locator('ul.codes li code').allInnerTexts();
    assert.equal(codes.length, 10, `10 recovery codes: ${codes.join(', ')}`);
  });

  step('"Continue" goes on to /admin, which lands on /admin/users listing both accounts', async () => {
    const p = pages.admin;
    assert.equal(await p.getByRole('link', { name: 'Continue', exact: true }).getAttribute('href'), '/admin');
    await p.getByRole('link', { name: 'Continue', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/admin/users');
    await p.getByRole('heading', { name: 'Users', exact: true }).waitFor();
    const nav = p.getByRole('navigation', { name: 'Admin console' });
    assert.equal(await nav.getByRole('link', { name: 'Users' }).getAttribute('aria-current'), 'page');
    for (const name of ['Clients', 'Groups', 'Policy and keys', 'Audit log']) {
      assert.ok(await nav.getByRole('link', { name }).isVisible(), `the navigation has ${name}`);
    }
    const rows = await tableRows(p);
    const adminRow = rows.find((r) => r[0].startsWith(ADMIN.email));
    const userRow = rows.find((r) => r[0] === USER.email);
    assert.ok(adminRow && userRow, `both users listed: ${JSON.stringify(rows)}`);
    assert.match(adminRow[0], /Admin$/, 'the admin has the Admin badge');
    assert.deepEqual(userRow.slice(1, 3), [USER.name, 'Active']);
    assert.ok(await p.getByRole('heading', { name: 'Create a user' }).isVisible());
    assert.ok(await p.getByRole('button', { name: 'Create user', exact: true }).isVisible());
    await shoot(p, 'admin-users');
  });

  const userPath = () => `/admin/users/${ids[USER.email]}`;

  step('searching for the user finds them alone; their page shows them active, with their session', async () => {
    const p = pages.admin;
    await p.getByLabel('Search', { exact: true }).fill(USER.email);
    await p.getByRole('button', { name: 'Search', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/admin/users' && u.searchParams.get('q') === USER.email);
    const rows = await tableRows(p);
    assert.deepEqual(rows.map((r) => r[0]), [USER.email], 'only the user matches');
    await p.getByRole('link', { name: USER.email, exact: true }).click();
    await p.waitForURL((u) => u.pathname === userPath());
    await p.getByRole('heading', { name: USER.email, exact: true }).waitFor();
    const account = p.locator('section.card').filter({ has: p.getByRole('heading', { name: 'Account' }) });
    const badges = (await account.locator('.badge').allInnerTexts()).map((t) => t.trim());
    assert.deepEqual(badges, ['Active', 'Verified']);
    assert.match(await account.innerText(), new RegExp(`Name: ${escapeRe(USER.name)}`));
    for (const name of ['Disable', 'Sign out everywhere', 'Reset MFA', 'Make admin', 'Delete user']) {
      assert.ok(await p.getByRole('button', { name, exact: true }).isVisible(), `a "${name}" button`);
    }
    const sessions = p.locator('section.card').filter({ has: p.getByRole('heading', { name: 'Sessions' }) });
    const live = await tableRows(sessions);
    assert.equal(live.length, 1, `browser A's session: ${JSON.stringify(live)}`);
    assert.equal(live[0][2], '1fa', 'signed in with the password alone');
    await shoot(p, 'admin-user');
  });

  step('"Disable": the notice says so; the page shows "Disabled", "Enable" and no session', async () => {
    const p = pages.admin;
    await p.getByRole('button', { name: 'Disable', exact: true }).click();
    await p.waitForURL((u) => u.pathname === userPath() && u.searchParams.get('notice') === 'user-disabled');
    assert.equal((await p.getByRole('status').innerText()).trim(), DISABLED_NOTICE);
    const account = p.locator('section.card').filter({ has: p.getByRole('heading', { name: 'Account' }) });
    assert.deepEqual((await account.locator('.badge').allInnerTexts()).map((t) => t.trim()), ['Disabled', 'Verified']);
    assert.ok(await p.getByRole('button', { name: 'Enable', exact: true }).isVisible());
    assert.equal(await p.getByRole('button', { name: 'Disable', exact: true }).count(), 0);
    assert.ok(await p.getByText('No live sessions.', { exact: true }).isVisible());
    const listed = (await server.cliJson(['user', 'list', '--json'])).find((u) => u.email === USER.email);
    assert.equal(listed.disabled, true, 'the CLI sees the account disabled');
    await shoot(p, 'admin-user-disabled');
  });

  step('browser A: /account now sends to /login, and the password says the account is disabled', async () => {
    const p = pages.user;
    await p.goto('/account');
    await p.waitForURL((u) => u.pathname === '/login');
    await fillSignIn(p, USER);
    const alert = p.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.innerText()).trim(), DISABLED_LOGIN);
    assert.equal(pathOf(p), '/login');
    const peek = await p.context().request.get('/account', { maxRedirects: 0 });
    assert.equal(peek.status(), 303, 'still no session');
  });

  step('the user\'s access tokens get 401 at /userinfo; the refresh token invalid_grant', async () => {
    for (const [which, t] of [
      ['first', tokens.access_token],
      ['refreshed', refreshed.access_token],
    ]) {
      const info = await userinfo(t);
      assert.equal(info.status, 401, `the ${which} access token at /userinfo: ${info.body}`);
      assert.match(info.challenge ?? '', /invalid_token/, `the ${which} token's challenge: ${info.challenge}`);
    }
    const { status, body } = await token({
      grant_type: 'refresh_token',
      refresh_token: refreshed.refresh_token,
      client_id: app.client_id,
      client_secret: app.client_secret,
    });
    assert.equal(status, 400, `refresh after disabling: ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_grant');
  });

  // ---------------------------------------------------------- clients

  const clientsTable = (p) => p.locator('section.card').filter({ has: p.locator('table.list') });

  step('a client with an http://evil.example.com redirect URI is refused with an alert; nothing is made', async () => {
    const p = pages.admin;
    await p.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Clients' }).click();
    await p.waitForURL((u) => u.pathname === '/admin/clients');
    await p.getByRole('heading', { name: 'Create a client' }).waitFor();
    const before = await tableRows(clientsTable(p));
    assert.ok(before.some((r) => r[0] === APP && r[3] === app.client_id), `Demo Notes listed: ${JSON.stringify(before)}`);
    await p.getByLabel('Name', { exact: true }).fill(EVIL_CLIENT.name);
    await p.getByLabel('Redirect URIs', { exact: true }).fill(EVIL_CLIENT.redirectUri);
    await p.getByRole('button', { name: 'Create client', exact: true }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), new RegExp(`${escapeRe(EVIL_CLIENT.redirectUri)}.*must use https`));
    assert.equal(await p.getByRole('heading', { name: /^Client secret for/ }).count(), 0, 'no secret shown');
    // The form keeps what was typed, to fix it.
    assert.equal(await p.getByLabel('Name', { exact: true }).inputValue(), EVIL_CLIENT.name);
    assert.equal(await p.getByLabel('Redirect URIs', { exact: true }).inputValue(), EVIL_CLIENT.redirectUri);
    assert.deepEqual(await tableRows(clientsTable(p)), before, 'the list is unchanged');
    assert.equal(await listedClient((c) => c.name === EVIL_CLIENT.name), undefined, 'client list has no such client');
    await shoot(p, 'admin-clients-error');
  });

  let created; // { clientId, secret }
  step('"Create client" shows the new client\'s client_id and client_secret once', async () => {
    const p = pages.admin;
    await p.goto('/admin/clients');
    await p.getByRole('heading', { name: 'Create a client' }).waitFor();
    // A new client's form starts with the code and refresh grants.
    assert.equal(await p.getByLabel('authorization_code', { exact: true }).isChecked(), true);
    assert.equal(await p.getByLabel('refresh_token', { exact: true }).isChecked(), true);
    assert.equal(await p.getByLabel('client_credentials', { exact: true }).isChecked(), false);
    await p.getByLabel('Name', { exact: true }).fill(NEW_CLIENT.name);
    await p.getByLabel('Redirect URIs', { exact: true }).fill(NEW_CLIENT.redirectUris.join('\n'));
    await p.getByLabel('Post-logout redirect URIs', { exact: true }).fill(NEW_CLIENT.postLogout);
    await p.getByLabel('client_credentials', { exact: true }).check();
    await p.getByLabel('Signing algorithm', { exact: true }).selectOption('ES256');
    await p.getByLabel(/First-party/).check();
    await p.getByRole('button', { name: 'Create client', exact: true }).click();

    const shown = p.locator('section.card').filter({
      has: p.getByRole('heading', { name: `Client secret for ${NEW_CLIENT.name}`, exact: true }),
    });
    await shown.waitFor();
    const clientId = (await shown.locator('p', { hasText: /^client_id:/ }).locator('code').innerText()).trim();
    const secret = (await shown.locator('p', { hasText: /^client_secret:/ }).locator('code').innerText()).trim();
    assert.ok(clientId.length > 0 && secret.length >= 20, `a client_id and a secret: ${clientId} ${secret}`);
    assert.match(await shown.innerText(), /Shown once/);
    created = { clientId, secret };

    const row = (await tableRows(clientsTable(p))).find((r) => r[3] === clientId);
    assert.ok(row, 'the new client is listed');
    assert.deepEqual(row, [
      NEW_CLIENT.name,
      'confidential, first-party',
      'authorization_code, refresh_token, client_credentials',
      clientId,
    ]);
    const listed = await listedClient((c) => c.client_id === clientId);
    assert.ok(listed, 'client list --json has it');
    assert.deepEqual(listed.redirect_uris, NEW_CLIENT.redirectUris);
    assert.deepEqual(listed.post_logout_redirect_uris, [NEW_CLIENT.postLogout]);
    assert.equal(listed.signing_alg, 'ES256');
    assert.equal(listed.first_party, true);
    assert.equal(listed.public, false);
    await shoot(p, 'admin-clients-created');
  });

  step('the secret works (a client_credentials token) and is not shown again', async () => {
    const p = pages.admin;
    const { status, body } = await token({
      grant_type: 'client_credentials',
      client_id: created.clientId,
      client_secret: created.secret,
    });
    assert.equal(status, 200, `client_credentials with the shown secret: ${JSON.stringify(body)}`);
    assert.ok(body.access_token);
    await p.goto('/admin/clients');
    await p.getByRole('heading', { name: 'Create a client' }).waitFor();
    assert.equal(await p.getByRole('heading', { name: /^Client secret for/ }).count(), 0);
    assert.ok(!(await p.content()).includes(created.secret), 'the secret is nowhere on the page');
  });

  // ---------------------------------------------------------- audit log

  step('the audit log filtered by the user\'s email has user.disabled by admin:<the admin\'s id>', async () => {
    const p = pages.admin;
    await p.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Audit log' }).click();
    await p.waitForURL((u) => u.pathname === '/admin/audit');
    await p.getByRole('heading', { name: 'Audit log' }).waitFor();
    const headers = (await p.locator('table.list thead th').allInnerTexts()).map((t) => t.trim());
    assert.deepEqual(headers, ['Time (UTC)', 'Event', 'Outcome', 'User', 'Actor', 'Address']);
    await p.getByLabel('User', { exact: true }).fill(USER.email);
    await p.getByRole('button', { name: 'Filter', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/admin/audit' && u.searchParams.get('user') === USER.email);
    assert.equal(await p.getByLabel('User', { exact: true }).inputValue(), USER.email, 'the filter stays filled');
    const rows = await tableRows(p);
    assert.ok(rows.length >= 2, `the user's events: ${JSON.stringify(rows)}`);
    for (const r of rows) assert.equal(r[3], USER.email, `only the user's events: ${JSON.stringify(r)}`);
    const disabled = rows.filter((r) => r[1] === 'user.disabled');
    assert.equal(disabled.length, 1, `one user.disabled event: ${JSON.stringify(rows)}`);
    const [at, , outcome, , actor] = disabled[0];
    assert.match(at, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    assert.equal(outcome, 'ok');
    assert.equal(actor, `admin:${ids[ADMIN.email]}`);
    await shoot(p, 'admin-audit');
  });

  step('adding Event "user.disabled" to the filter leaves that row alone', async () => {
    const p = pages.admin;
    await p.getByLabel('Event', { exact: true }).fill('user.disabled');
    await p.getByRole('button', { name: 'Filter', exact: true }).click();
    await p.waitForURL((u) => u.searchParams.get('kind') === 'user.disabled');
    const rows = await tableRows(p);
    assert.deepEqual(
      rows.map((r) => [r[1], r[3], r[4]]),
      [['user.disabled', USER.email, `admin:${ids[ADMIN.email]}`]],
    );
  });

  // Run the steps in order; once one fails the rest are skipped, not failed.
  const run = runSteps(steps, {
    where: () =>
      Object.entries(pages)
        .map(([k, p]) => ` (page ${k}: ${p.url()})`)
        .join(''),
    server,
  });

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no console page scrolls sideways at the phone\'s width', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(sideways, []);
  });

  test('no page answered an error status but the refusals', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, {
      user: ['GET /admin 403', 'GET /admin/users 403', 'POST /login 403'],
      admin: ['POST /admin/clients 422'],
    });
  });
});

// Browser end-to-end test of "Continue with Google" against a fake Google: a
// second Latchkey server plays Google (its discovery, /authorize, sign-in
// page and ID tokens are real OpenID Connect), with a verified user and a
// first-party client for the server under test, made with its CLI. The
// server under test gets that issuer as providers.google with loopback
// outbound calls allowed.
// /login shows "Continue with Google" under the sign-in form → the fake
// Google's /login → signed in there, back through
// /login/with/google/callback → /account of a new account, its address
// "Not verified" (a non-Google issuer is not trusted with addresses), with
// Google under "Sign-in methods". Signed out here, "Continue with Google"
// again goes straight through: the fake Google's session is still alive.
// "Unlink" is refused (409, "Can’t unlink this one"): it is the account's
// only way to sign in. Screenshots (prefix google-) go to screenshots/.
//
// Run: cd tests/e2e && npm ci && node --test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import {
  ACTION_TIMEOUT_MS,
  CHROMIUM,
  CHROMIUM_ARGS,
  Server,
  VIEWPORTS,
  guardProcess,
  runSteps,
  screenshot,
  watchPage,
} from './lib.mjs';

const STAMP = Date.now().toString(36);
const USER = { email: `google-${STAMP}@example.com`, name: 'Ada Lovelace', password: 'copper kettle marmalade lighthouse' };
const UNLINK_REFUSED = 'Can’t unlink this one';
const PORT_BOUND_COOKIES = '--enable-features=EnablePortBoundCookies';

describe('sign-in with a fake Google in a browser', { timeout: 180_000 }, () => {
  // Both servers are http://localhost (an http issuer and an http redirect
  // URI must be loopback, and a public URL can't be an IP address), and
  // browsers keep cookies per host, not per port: the two servers' cookies
  // of the same name (latchkey_session) would overwrite each other, and
  // signing out here would sign the browser out of "Google" too, which the
  // real Google on its own host never is. Chromium's port-bound cookies keep
  // them apart as two hosts would.
  const google = new Server();
  const server = new Server();
  let releaseGoogle = () => {};
  let releaseServer = () => {};
  let browser;
  let page;
  const problems = [];
  const documents = [];

  const isAt = (base, pathname) => (u) => u.origin === new URL(base).origin && u.pathname === pathname;
  const label = (u) => (u.origin === new URL(server.url).origin ? 'here' : u.origin === new URL(google.url).origin ? 'google' : u.origin);

  /**
   * The main-frame navigations the page makes while `fn` runs, each hop of a
   * redirect chain apart, as "WHO METHOD /path STATUS"; `urls` (if given)
   * gets each hop's full URL.
   */
  async function hopsDuring(fn, urls = []) {
    const requests = [];
    const onRequest = (req) => {
      if (req.isNavigationRequest() && req.frame() === page.mainFrame()) requests.push(req);
    };
    page.on('request', onRequest);
    try {
      await fn();
    } finally {
      page.off('request', onRequest);
    }
    return Promise.all(
      requests.map(async (req) => {
        const res = await req.response();
        const u = new URL(req.url());
        urls.push(u);
        return `${label(u)} ${req.method()} ${u.pathname} ${res ? res.status() : null}`;
      }),
    );
  }

  const googleButton = () => page.locator('a.button.secondary', { hasText: 'Continue with Google' });
  const methods = () => page.locator('section.card', { has: page.getByRole('heading', { name: 'Sign-in methods' }) });

  /** /account of the account made from the fake Google's user. */
  async function expectAccount() {
    await page.waitForURL(isAt(server.url, '/account'));
    await page.getByRole('heading', { name: 'Sign-in methods' }).waitFor();
    assert.equal((await page.getByRole('heading', { level: 1 }).innerText()).trim(), USER.name, 'the name from the profile');
    const email = page.locator('.email-line');
    assert.equal((await email.locator('.address').innerText()).trim(), USER.email, 'the account page shows the email');
    assert.equal(
      (await email.locator('.badge').innerText()).trim(),
      'Not verified',
      'a non-Google issuer is not trusted with the address',
    );
    const listed = methods().getByRole('listitem');
    assert.equal(await listed.count(), 1, `one sign-in method: ${JSON.stringify(await listed.allInnerTexts())}`);
    assert.equal((await listed.locator('strong').innerText()).trim(), 'Google');
    assert.equal((await listed.locator('.hint').innerText()).trim(), USER.email, 'with the Google account\'s address');
    assert.ok(await listed.getByRole('button', { name: 'Unlink Google', exact: true }).isVisible(), 'an Unlink button');
    assert.equal((await listed.getByRole('button', { name: 'Unlink Google' }).innerText()).trim(), 'Unlink');
  }

  before(async () => {
    releaseGoogle = guardProcess(google);
    releaseServer = guardProcess(server);
    await google.start();
    await google.cliJson(
      ['user', 'create', '--email', USER.email, '--name', USER.name, '--password-stdin', '--verified', '--json'],
      { input: `${USER.password}\n` },
    );
    const client = await google.cliJson([
      'client', 'create', '--name', 'Latchkey',
      // Loopback: any port (RFC 8252), so it fits the server started next.
      '--redirect-uri', 'http://localhost/login/with/google/callback',
      '--first-party', '--json',
    ]);
    assert.ok(client.client_id && client.client_secret, `a confidential client: ${JSON.stringify(client)}`);
    server.extraEnv = {
      LATCHKEY_OUTBOUND__ALLOW_LOOPBACK: 'true',
      LATCHKEY_PROVIDERS__GOOGLE__ISSUER: google.url,
      LATCHKEY_PROVIDERS__GOOGLE__CLIENT_ID: client.client_id,
      LATCHKEY_PROVIDERS__GOOGLE__CLIENT_SECRET: client.client_secret,
    };
    await server.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, PORT_BOUND_COOKIES] });
    const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
    page = await context.newPage();
    watchPage(page, problems, documents);
  });

  after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await server.stop();
      await google.stop();
      await server.removeDir();
      await google.removeDir();
      releaseServer();
      releaseGoogle();
    }
  });

  // Each step leaves the browser where the next one starts.
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);

  step('/login shows "Continue with Google" under the sign-in form', async () => {
    await page.goto(`${server.url}/login`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const form = page.locator('form[action="/login"]');
    const byMail = form.getByRole('button', { name: 'Email me a sign-in link', exact: true });
    assert.ok(await form.getByRole('button', { name: 'Sign in', exact: true }).isVisible());
    assert.ok(await byMail.isVisible());
    const button = googleButton();
    assert.equal(await button.count(), 1, 'one "Continue with Google"');
    assert.ok(await button.isVisible());
    assert.equal(await button.getAttribute('href'), '/login/with/google');
    assert.equal(await form.locator('a.button').count(), 0, 'outside the password form');
    const [mail, g] = [await byMail.boundingBox(), await button.boundingBox()];
    assert.ok(g.y >= mail.y + mail.height, `below "Email me a sign-in link": ${JSON.stringify({ mail, g })}`);
    await screenshot(page, 'google-login');
  });

  step('"Continue with Google" → Google\'s sign-in → back through the callback to a new account', async () => {
    const urls = [];
    const toGoogle = await hopsDuring(async () => {
      await googleButton().click();
      await page.waitForURL(isAt(google.url, '/login'));
    }, urls);
    assert.deepEqual(
      toGoogle,
      ['here GET /login/with/google 302', 'google GET /authorize 302', 'google GET /login 200'],
      toGoogle.join(', '),
    );
    // The authorization request: code flow with PKCE, state and nonce, back
    // to this server's callback (its port: the client's loopback URI).
    const asks = Object.fromEntries(urls[1].searchParams);
    assert.equal(asks.response_type, 'code');
    assert.equal(asks.client_id, server.extraEnv.LATCHKEY_PROVIDERS__GOOGLE__CLIENT_ID);
    assert.equal(asks.redirect_uri, `${server.url}/login/with/google/callback`);
    assert.deepEqual(asks.scope.split(' ').sort(), ['email', 'openid', 'profile']);
    assert.equal(asks.code_challenge_method, 'S256');
    for (const k of ['state', 'nonce', 'code_challenge']) assert.ok(asks[k]?.length >= 22, `${k}: ${asks[k]}`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const asked = new URL(page.url()).searchParams.get('next') ?? '';
    assert.match(asked, /^\/authorize\b/, `Google's /login continues to its /authorize: ${page.url()}`);
    const hops = await hopsDuring(async () => {
      await page.getByLabel('Email', { exact: true }).fill(USER.email);
      await page.getByLabel('Password', { exact: true }).fill(USER.password);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.waitForURL(isAt(server.url, '/account'));
    });
    assert.deepEqual(
      hops,
      [
        'google POST /login 303',
        'google GET /authorize/continue 302',
        'here GET /login/with/google/callback 303',
        'here GET /account 200',
      ],
      `Google's sign-in, its authorization (first party: no consent), the callback: ${hops.join(', ')}`,
    );
    await expectAccount();
    // Signed in at both, each with its own session cookie (see above).
    const sessions = (await page.context().cookies()).filter((c) => c.name === 'latchkey_session');
    assert.equal(sessions.length, 2, `one session cookie per server: is ${PORT_BOUND_COOKIES} in effect?`);
    await screenshot(page, 'google-account');
  });

  step('signed out here, "Continue with Google" again comes straight back signed in', async () => {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL((u) => u.origin === new URL(server.url).origin && u.pathname !== '/account');
    // Signed out here: /account wants a sign-in.
    await page.goto(`${server.url}/account`);
    await page.waitForURL(isAt(server.url, '/login'));
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const hops = await hopsDuring(async () => {
      await googleButton().click();
      // Back at /account, or stopped at Google's sign-in form (the
      // assertions below then say so); not the /login this starts from.
      await page.waitForURL((u) => isAt(server.url, '/account')(u) || isAt(google.url, '/login')(u));
    });
    const paths = hops.map((h) => h.replace(/ \d+$/, ''));
    assert.ok(!paths.includes('google GET /login'), `no sign-in form at Google: ${hops.join(', ')}`);
    assert.ok(!paths.includes('here GET /login'), `no sign-in page here: ${hops.join(', ')}`);
    assert.deepEqual(
      paths,
      ['here GET /login/with/google', 'google GET /authorize', 'here GET /login/with/google/callback', 'here GET /account'],
      `straight through: ${hops.join(', ')}`,
    );
    await expectAccount();
  });

  step('"Unlink" is refused (409): Google is the only way to sign in', async () => {
    assert.deepEqual(documents, [], 'no error page so far');
    const hops = await hopsDuring(async () => {
      await methods().getByRole('button', { name: 'Unlink Google', exact: true }).click();
      await page.getByRole('heading', { name: UNLINK_REFUSED }).waitFor();
    });
    assert.deepEqual(hops, ['here POST /account/identities/unlink 409'], 'a page, not a redirect');
    assert.match(await page.getByRole('alert').innerText(), /only way to sign in/);
    const back = page.getByRole('link', { name: 'Back to your account' });
    assert.ok(await back.isVisible());
    await screenshot(page, 'google-unlink-refused');
    await back.click();
    await expectAccount();
  });

  // Run the steps in order; once one fails the rest are skipped, not failed.
  const run = runSteps(steps, {
    where: () =>
      `${page ? ` (page: ${page.url()})` : ''}\n--- fake Google's log (tail) ---\n${google.logTail(20)}`,
    server,
  });

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no page answered an error status but the refused unlink', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, ['POST /account/identities/unlink 409']);
  });
});

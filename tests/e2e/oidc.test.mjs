// Browser end-to-end test of Latchkey as an OpenID Connect provider, with a
// relying app built on openid-client (a certified RP library, rp-app.mjs):
// the app's "Sign in with Latchkey" → /login naming the app → consent →
// Allow → back at the app signed in (acr 1fa); a second sign-in goes straight
// through (consent remembered); in another browser another user says Deny and
// the app gets access_denied; and a public client (PKCE, no secret) signs in.
// Then RP-initiated logout: the app's "Sign out" sends its ID token as
// id_token_hint to the end_session_endpoint, which ends the Latchkey session
// at once and returns to the app's registered post-logout URI with the app's
// state (no confirmation); /account then wants a sign-in, and so does the
// app's next sign-in. A sign-out request without a hint (Latchkey's /logout
// opened directly) shows "Sign out?" naming the app, and confirming it
// returns to the app with that request's state.
// Users and clients are made with the CLI. Screenshots of the sign-in,
// consent and sign-out confirmation pages go to screenshots/.
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
  freePort,
  guardProcess,
  runSteps,
  screenshot,
  watchPage,
} from './lib.mjs';
import { startRelyingApp } from './rp-app.mjs';

const STAMP = Date.now().toString(36);
const USER = { email: `oidc-${STAMP}@example.com`, name: 'Ada Lovelace', password: 'copper kettle marmalade lighthouse' };
const OTHER = { email: `oidc-deny-${STAMP}@example.com`, name: 'Grace Hopper', password: 'brass compass harbour lantern' };
const APP = 'Demo Notes';
const PUBLIC_APP = 'Demo Notes Mobile';
// What the consent page says each asked scope lets the app do.
const SCOPE_LINES = [/who you are/i, /your name/i, /your email address/i];

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('OpenID Connect sign-in from an openid-client app', { timeout: 180_000 }, () => {
  const server = new Server();
  let releaseProcess = () => {};
  let app; // confidential client
  let publicApp; // public client
  let browser;
  let page; // first browser
  let otherPage; // second browser, the one that says Deny
  const problems = [];
  const documents = [];
  const otherDocuments = [];

  async function createUser(u) {
    await server.cliJson(['user', 'create', '--email', u.email, '--name', u.name, '--password-stdin', '--verified', '--json'], {
      input: `${u.password}\n`,
    });
  }

  async function startApp(name, { isPublic, postLogout = false }) {
    // A port picked free can be taken before the app binds it: try again.
    let lastError;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const port = await freePort();
      const redirectUri = `http://localhost:${port}/callback`;
      const postLogoutRedirectUri = `http://localhost:${port}/logged-out`;
      const created = await server.cliJson([
        'client', 'create', '--name', name, '--redirect-uri', redirectUri,
        ...(postLogout ? ['--post-logout-redirect-uri', postLogoutRedirectUri] : []),
        ...(isPublic ? ['--public'] : []), '--json',
      ]);
      assert.ok(created.client_id, `client create printed no client_id: ${JSON.stringify(created)}`);
      if (isPublic) assert.equal(created.client_secret, null, 'a public client gets no secret');
      else assert.ok(created.client_secret, 'a confidential client gets a secret');
      try {
        return await startRelyingApp({
          port,
          issuer: server.url,
          clientId: created.client_id,
          clientSecret: created.client_secret ?? undefined,
          redirectUri,
          postLogoutRedirectUri,
          name,
        });
      } catch (e) {
        if (e.code !== 'EADDRINUSE') throw e;
        lastError = e;
      }
    }
    throw lastError;
  }

  async function newPage(problemsList, documentsList) {
    const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
    const p = await context.newPage();
    watchPage(p, problemsList, documentsList);
    return p;
  }

  /** The main-frame navigations `p` makes while `fn` runs, redirects included. */
  async function navigationsDuring(p, fn) {
    const urls = [];
    const onRequest = (req) => {
      if (req.isNavigationRequest() && req.frame() === p.mainFrame()) urls.push(new URL(req.url()));
    };
    p.on('request', onRequest);
    try {
      await fn();
    } finally {
      p.off('request', onRequest);
    }
    return urls;
  }

  /**
   * The main-frame navigations `p` makes while `fn` runs, each hop of a
   * redirect chain apart: { method, url, status, location } (status null if
   * no answer came).
   */
  async function hopsDuring(p, fn) {
    const requests = [];
    const onRequest = (req) => {
      if (req.isNavigationRequest() && req.frame() === p.mainFrame()) requests.push(req);
    };
    p.on('request', onRequest);
    try {
      await fn();
    } finally {
      p.off('request', onRequest);
    }
    return Promise.all(
      requests.map(async (req) => {
        const res = await req.response();
        return {
          method: req.method(),
          url: new URL(req.url()),
          status: res ? res.status() : null,
          location: res ? (await res.allHeaders()).location ?? null : null,
        };
      }),
    );
  }

  /** "latchkey GET /logout 303"-like lines for assertion messages. */
  const describeHops = (hops) =>
    hops
      .map((h) => `${h.url.origin === new URL(server.url).origin ? 'latchkey' : 'app'} ${h.method} ${h.url.pathname} ${h.status}`)
      .join(', ');

  const isAt = (base, pathname) => (u) => u.origin === new URL(base).origin && u.pathname === pathname;

  async function startSignIn(p, rp) {
    await p.goto(rp.url);
    await p.getByRole('link', { name: 'Sign in with Latchkey' }).click();
  }

  async function signInOnLatchkey(p, u) {
    await p.getByLabel('Email', { exact: true }).fill(u.email);
    await p.getByLabel('Password', { exact: true }).fill(u.password);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  async function expectConsent(p, appName) {
    await p.waitForURL(isAt(server.url, '/consent'));
    await p.getByRole('heading', { name: `Allow ${appName} to use your account?` }).waitFor();
  }

  async function claim(p, name) {
    return (await p.getByTestId(`claim-${name}`).innerText()).trim();
  }

  /** The app's page after a successful sign-in of `u`; returns the ID token's sub. */
  async function expectSignedIn(p, rp, u) {
    await p.waitForURL(isAt(rp.url, '/callback'));
    await p.getByText(`Signed in as ${u.email}`, { exact: true }).waitFor();
    const sub = await claim(p, 'sub');
    assert.ok(sub.length > 0, 'the ID token has a sub');
    assert.equal(await claim(p, 'email'), u.email);
    assert.equal(await claim(p, 'email_verified'), 'true');
    assert.equal(await claim(p, 'acr'), '1fa');
    assert.ok((await claim(p, 'amr')).split(' ').includes('pwd'), 'amr names the password');
    assert.equal((await p.getByTestId('userinfo-email').innerText()).trim(), u.email, 'userinfo has the email');
    // RFC 9207: the provider named itself in the authorization response.
    assert.equal(new URL(p.url()).searchParams.get('iss'), server.url);
    return sub;
  }

  before(async () => {
    releaseProcess = guardProcess(server);
    await server.start();
    await createUser(USER);
    await createUser(OTHER);
    app = await startApp(APP, { isPublic: false, postLogout: true });
    publicApp = await startApp(PUBLIC_APP, { isPublic: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await newPage(problems, documents);
  });

  after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await app?.close();
      await publicApp?.close();
      await server.stop();
      await server.removeDir();
      releaseProcess();
    }
  });

  // Each step leaves the browsers where the next one starts.
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);

  step('"Sign in with Latchkey" leads to /login, which names the app', async () => {
    await startSignIn(page, app);
    await page.waitForURL(isAt(server.url, '/login'));
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.ok(await page.getByText(`to continue to ${APP}`, { exact: true }).isVisible(), 'the sign-in page names the app');
    await screenshot(page, 'oidc-login');
  });

  step('signing in asks for consent, listing what the app asks', async () => {
    await signInOnLatchkey(page, USER);
    await expectConsent(page, APP);
    assert.ok(await page.getByText(USER.email).first().isVisible(), 'the consent page names the account');
    const asks = await page.locator('ul.scopes').getByRole('listitem').allInnerTexts();
    assert.equal(asks.length, SCOPE_LINES.length, `one line per scope asked: ${JSON.stringify(asks)}`);
    for (const line of SCOPE_LINES) {
      assert.ok(asks.some((a) => line.test(a)), `the consent page lists ${line}: ${JSON.stringify(asks)}`);
    }
    assert.ok(await page.getByRole('button', { name: 'Allow', exact: true }).isVisible());
    assert.ok(await page.getByRole('button', { name: 'Deny', exact: true }).isVisible());
    await screenshot(page, 'oidc-consent');
  });

  let firstSub;
  step('"Allow" returns to the app, signed in with acr 1fa', async () => {
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    firstSub = await expectSignedIn(page, app, USER);
  });

  step('a second sign-in from the app goes straight through: consent is remembered', async () => {
    const visited = await navigationsDuring(page, async () => {
      await startSignIn(page, app);
      await page.waitForURL(isAt(app.url, '/callback'));
    });
    const paths = visited.map((u) => `${u.origin === new URL(server.url).origin ? 'latchkey' : 'app'} ${u.pathname}`);
    assert.ok(paths.includes('latchkey /authorize'), `went through /authorize: ${paths.join(', ')}`);
    assert.ok(!paths.includes('latchkey /login'), `no sign-in page: ${paths.join(', ')}`);
    assert.ok(!paths.includes('latchkey /consent'), `no consent page: ${paths.join(', ')}`);
    assert.equal(await expectSignedIn(page, app, USER), firstSub, 'the same subject as before');
  });

  step('a public client (PKCE, no secret) signs in after its own consent', async () => {
    await startSignIn(page, publicApp);
    // Already signed in to Latchkey: straight to consent for this other app.
    await expectConsent(page, PUBLIC_APP);
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    const sub = await expectSignedIn(page, publicApp, USER);
    assert.equal(sub, firstSub, 'the same subject for both apps');
    assert.equal((await page.getByTestId('client-auth').innerText()).trim(), 'none');
  });

  step('in another browser, "Deny" on consent sends the app access_denied', async () => {
    otherPage = await newPage(problems, otherDocuments);
    await startSignIn(otherPage, app);
    await otherPage.waitForURL(isAt(server.url, '/login'));
    assert.ok(await otherPage.getByText(`to continue to ${APP}`, { exact: true }).isVisible());
    // Another user: the first one's Allow is remembered and would skip consent.
    await signInOnLatchkey(otherPage, OTHER);
    await expectConsent(otherPage, APP);
    assert.ok(await otherPage.getByText(OTHER.email).first().isVisible(), 'the consent page names this account');
    await otherPage.getByRole('button', { name: 'Deny', exact: true }).click();
    await otherPage.waitForURL(isAt(app.url, '/callback'));
    const alert = otherPage.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.innerText()).trim(), 'Sign-in failed: access_denied');
    const params = new URL(otherPage.url()).searchParams;
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('iss'), server.url, 'the error response names the issuer too');
    assert.equal(params.get('code'), null, 'no code after Deny');
    assert.match(await otherPage.title(), new RegExp(escapeRe(APP)));
  });

  /** Latchkey's /account wants a sign-in: this browser has no session there. */
  async function expectSignedOutOfLatchkey(p) {
    await p.goto(`${server.url}/account`);
    await p.waitForURL(isAt(server.url, '/login'));
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  }

  /** The app's page after the provider sent the browser back with `state`. */
  async function expectLoggedOut(p, rp, state) {
    await p.waitForURL(isAt(rp.url, '/logged-out'));
    await p.getByText(`You are signed out of ${APP}`, { exact: true }).waitFor();
    assert.equal(new URL(p.url()).searchParams.get('state'), state, 'the state comes back');
  }

  step('the app\'s "Sign out" ends the Latchkey session at once (valid id_token_hint): no confirmation', async () => {
    // Signed in to Latchkey still: the app's sign-in goes straight through.
    await startSignIn(page, app);
    await expectSignedIn(page, app, USER);
    const hops = await hopsDuring(page, async () => {
      await page.getByRole('link', { name: 'Sign out', exact: true }).click();
      // Back at the app, or stopped on a page of Latchkey's (a confirmation
      // would be one: the assertion below then says so).
      await page.waitForURL((u) => isAt(app.url, '/logged-out')(u) || u.origin === new URL(server.url).origin);
    });
    const at = describeHops(hops);
    assert.deepEqual(
      hops.map((h) => [h.url.origin, h.method, h.url.pathname]),
      [
        [app.url, 'GET', '/logout'],
        [server.url, 'GET', '/logout'],
        [app.url, 'GET', '/logged-out'],
      ],
      `the app, the end_session_endpoint, straight back to the app: ${at}`,
    );
    const [, endSession, back] = hops;
    const asked = endSession.url.searchParams;
    assert.ok(asked.get('id_token_hint'), 'the app sent its ID token as the hint');
    assert.equal(asked.get('client_id'), app.clientId);
    assert.equal(asked.get('post_logout_redirect_uri'), app.postLogoutRedirectUri);
    const state = asked.get('state');
    assert.ok(state, 'the app sent a state');
    assert.equal(endSession.status, 303, `the end_session_endpoint redirects at once: ${at}`);
    assert.equal(
      new URL(endSession.location, server.url).href,
      `${app.postLogoutRedirectUri}?state=${encodeURIComponent(state)}`,
      'to the registered post-logout URI with the state',
    );
    assert.equal(back.status, 200, `the app accepts the state: ${at}`);
    await expectLoggedOut(page, app, state);
  });

  step('Latchkey\'s /account then sends to /login: the session is gone', async () => {
    await expectSignedOutOfLatchkey(page);
  });

  step('signing in again from the app needs the sign-in form (not silent)', async () => {
    await startSignIn(page, app);
    await page.waitForURL(isAt(server.url, '/login'));
    assert.ok(await page.getByText(`to continue to ${APP}`, { exact: true }).isVisible(), 'the sign-in page names the app');
    await signInOnLatchkey(page, USER);
    // Consent outlives the session: no consent page this time.
    assert.equal(await expectSignedIn(page, app, USER), firstSub, 'the same subject as before');
  });

  const CONFIRM_STATE = 's2';
  step('Latchkey\'s /logout without a hint asks "Sign out?", naming the app', async () => {
    // This sign-out starts at the provider, not at the app: tell the app
    // which state to expect back (the test-only hook of rp-app.mjs).
    app.expectLogout(CONFIRM_STATE);
    const url = new URL('/logout', server.url);
    url.searchParams.set('post_logout_redirect_uri', app.postLogoutRedirectUri);
    url.searchParams.set('client_id', app.clientId);
    url.searchParams.set('state', CONFIRM_STATE);
    await page.goto(url.href);
    await page.getByRole('heading', { name: 'Sign out?' }).waitFor();
    assert.equal(new URL(page.url()).href, url.href, 'no redirect without a hint');
    assert.ok(await page.getByText(`${APP} asked to sign you out.`, { exact: true }).isVisible(), 'the page names the app');
    assert.ok(await page.getByText(USER.email).first().isVisible(), 'the page names the account');
    assert.ok(await page.getByRole('button', { name: 'Sign out', exact: true }).isVisible());
    await screenshot(page, 'oidc-logout-confirm');
  });

  step('"Sign out" there ends the session and returns to the app with the state', async () => {
    const hops = await hopsDuring(page, async () => {
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      // Back at the app, or on another page of Latchkey's (said below).
      await page.waitForURL(
        (u) => isAt(app.url, '/logged-out')(u) || (u.origin === new URL(server.url).origin && u.pathname !== '/logout'),
      );
    });
    const at = describeHops(hops);
    assert.deepEqual(
      hops.map((h) => [h.url.origin, h.method, h.url.pathname, h.status]),
      [
        [server.url, 'POST', '/logout', 303],
        [app.url, 'GET', '/logged-out', 200],
      ],
      `the confirmation, then the app: ${at}`,
    );
    await expectLoggedOut(page, app, CONFIRM_STATE);
    await expectSignedOutOfLatchkey(page);
  });

  // Run the steps in order; once one fails the rest are skipped, not failed.
  const run = runSteps(steps, {
    where: () => [page && ` (page: ${page.url()})`, otherPage && ` (other page: ${otherPage.url()})`].filter(Boolean).join(''),
    server,
  });

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no page answered an error status but the app after Deny', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, []);
    assert.deepEqual(otherDocuments, ['GET /callback 400']);
  });
});

// Browser end-to-end test of sign-in links by mail ("magic links"), in
// headless Chromium: /login offers "Email me a sign-in link" → "Check your
// email" → the mail in the outbox → opened in the browser that asked it signs
// in at once (/account); opened again anywhere it can't be used; a new link
// opened in another browser asks "Sign in as …?" first and signs that browser
// in with one click; an unknown address gets the same answer and no mail.
// The user is made with the CLI. Screenshots of the sign-in page, the
// check-your-email page, the confirmation and the used-link page go to
// screenshots/ (prefix magic-).
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
  escapeRe,
  guardProcess,
  pathOf,
  runSteps,
  screenshot,
  watchPage,
} from './lib.mjs';

const STAMP = Date.now().toString(36);
const USER = { email: `magic-${STAMP}@example.com`, name: 'Ada Lovelace', password: 'copper kettle marmalade lighthouse' };
// No account has this address.
const UNKNOWN = `magic-nobody-${STAMP}@example.com`;
const LINK_COOKIE = 'latchkey_link';
const USED_TITLE = 'This sign-in link can’t be used';

describe('sign-in links by mail in a browser', { timeout: 180_000 }, () => {
  const server = new Server();
  let releaseProcess = () => {};
  let browser;
  const problems = [];
  // Error-status navigations, per browser.
  const documents = { a: [], b: [], c: [] };
  const pages = {};
  // Outbox files already read.
  const seen = [];

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
   * The main-frame navigations `p` makes while `fn` runs, each hop of a
   * redirect chain apart, as "METHOD /path STATUS" (status null if none came).
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
        return `${req.method()} ${new URL(req.url()).pathname} ${res ? res.status() : null}`;
      }),
    );
  }

  async function linkCookie(p) {
    return (await p.context().cookies(server.url)).find((c) => c.name === LINK_COOKIE);
  }

  /** The card's text with `email` replaced, to compare two answers. */
  async function cardText(p, email) {
    const text = (await p.locator('section.card').innerText()).replace(/\s+/g, ' ').trim();
    return text.split(email).join('<email>');
  }

  /**
   * On /login: Email filled (and a password that is not the account's,
   * which the link button ignores), then "Email me a sign-in link". Lands on
   * "Check your email" naming the address; returns the hops.
   */
  async function askForLink(p, email) {
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await p.getByLabel('Email', { exact: true }).fill(email);
    await p.getByLabel('Password', { exact: true }).fill('not the password at all');
    const hops = await hopsDuring(p, async () => {
      await p.getByRole('button', { name: 'Email me a sign-in link', exact: true }).click();
      await p.getByRole('heading', { name: 'Check your email' }).waitFor();
    });
    assert.deepEqual(hops, ['POST /login/link 200'], 'the answer is a page, not a redirect');
    const said = await p.locator('section.card p').first().innerText();
    assert.match(said, new RegExp(`^If ${escapeRe(email)} can sign in here, we sent it a link`), said);
    assert.ok(await p.getByText(email, { exact: true }).isVisible(), 'the address is shown');
    return hops;
  }

  /** The next sign-in link mailed to USER (a mail not read before). */
  async function nextLink() {
    const { name, text } = await server.waitForMail(USER.email, { except: seen, withName: true });
    seen.push(name);
    assert.match(text, /^Subject: Your sign-in link\r?$/m, `the subject:\n${text}`);
    assert.match(text, new RegExp(`^To: <?${escapeRe(USER.email)}>?\\r?$`, 'm'), `the recipient:\n${text}`);
    const re = new RegExp(`${escapeRe(server.url)}/login/link\\?token=([A-Za-z0-9_-]+)`, 'g');
    const links = [...text.matchAll(re)];
    assert.ok(links.length > 0, `no sign-in link to ${server.url} in the mail:\n${text}`);
    const tokens = new Set(links.map((m) => m[1]));
    assert.equal(tokens.size, 1, `one link, however often it is shown: ${[...tokens].join(', ')}`);
    const [token] = tokens;
    assert.equal(token.length, 43, `a 256-bit token: ${token}`);
    return links[0][0];
  }

  async function expectAccount(p) {
    await p.getByRole('heading', { name: USER.name }).waitFor();
    assert.ok(await p.getByText(USER.email, { exact: true }).isVisible(), 'the account page shows the email');
    assert.ok(await p.getByText('This device', { exact: true }).isVisible(), 'this session is listed');
  }

  async function expectLinkUnusable(p, link) {
    const res = await p.goto(link);
    assert.equal(res.status(), 400);
    assert.equal(pathOf(p), '/login/link', 'no redirect');
    await p.getByRole('heading', { name: USED_TITLE }).waitFor();
    assert.match(await p.getByRole('alert').innerText(), /expired or was already used/);
    assert.ok(await p.getByRole('link', { name: 'Back to sign in' }).isVisible());
  }

  async function expectSignedOut(p) {
    await p.goto('/account');
    assert.equal(pathOf(p), '/login', 'a signed-out visit to /account lands on /login');
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  }

  before(async () => {
    releaseProcess = guardProcess(server);
    await server.start();
    await server.cliJson(['user', 'create', '--email', USER.email, '--name', USER.name, '--password-stdin', '--verified', '--json'], {
      input: `${USER.password}\n`,
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    await newPage('a');
  });

  after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await server.stop();
      await server.removeDir();
      releaseProcess();
    }
  });

  // Each step leaves the browsers where the next one starts.
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);

  step('/login offers "Email me a sign-in link" under "Sign in" and an "or"', async () => {
    const a = pages.a;
    await a.goto('/login');
    await a.getByRole('heading', { name: 'Sign in' }).waitFor();
    const form = a.locator('form[action="/login"]');
    const signIn = form.getByRole('button', { name: 'Sign in', exact: true });
    const byMail = form.getByRole('button', { name: 'Email me a sign-in link', exact: true });
    assert.ok(await signIn.isVisible());
    assert.ok(await byMail.isVisible());
    assert.equal(await byMail.getAttribute('formaction'), '/login/link', 'the same form, sent elsewhere');
    // In that order: Sign in, the divider, the link button.
    const order = await form.locator('button[type="submit"], .divider').evaluateAll((els) =>
      els.map((e) => (e.classList.contains('divider') ? `divider:${e.textContent.trim()}` : e.textContent.trim())),
    );
    assert.deepEqual(order, ['Sign in', 'divider:or', 'Email me a sign-in link']);
    const [top, bottom] = [await signIn.boundingBox(), await byMail.boundingBox()];
    assert.ok(bottom.y > top.y + top.height, 'the link button is below "Sign in"');
    await screenshot(a, 'magic-login');
  });

  let knownAnswer;
  step('"Email me a sign-in link" answers "Check your email" and binds this browser', async () => {
    const a = pages.a;
    assert.equal(await linkCookie(a), undefined, 'no link cookie before asking');
    await askForLink(a, USER.email);
    knownAnswer = await cardText(a, USER.email);
    const cookie = await linkCookie(a);
    assert.ok(cookie, 'the asking browser gets a link cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax', 'Lax: sent when the link is opened from a mail');
    await screenshot(a, 'magic-sent');
  });

  let firstLink;
  step('the mail "Your sign-in link" lands in the outbox with one link to the public URL', async () => {
    firstLink = await nextLink();
  });

  step('opened in the browser that asked, the link signs in at once: /account', async () => {
    const a = pages.a;
    const hops = await hopsDuring(a, async () => {
      await a.goto(firstLink);
      await a.waitForURL((u) => u.pathname === '/account');
    });
    assert.deepEqual(hops, ['GET /login/link 303', 'GET /account 200'], 'no confirmation page');
    await expectAccount(a);
    assert.equal(await linkCookie(a), undefined, 'the used link cookie is removed');
  });

  step('the same link again, in a new browser: "This sign-in link can’t be used" (400)', async () => {
    const c = await newPage('c');
    await expectLinkUnusable(c, firstLink);
    await screenshot(c, 'magic-used');
    await expectSignedOut(c);
  });

  let secondLink;
  step('signed out, browser A asks for a new link', async () => {
    const a = pages.a;
    await a.goto('/account');
    await a.getByRole('button', { name: 'Sign out', exact: true }).click();
    await a.waitForURL((u) => u.pathname === '/login');
    await askForLink(a, USER.email);
    secondLink = await nextLink();
    assert.notEqual(secondLink, firstLink, 'a new token');
  });

  step('opened in another browser B, the link asks "Sign in as …?" and uses nothing yet', async () => {
    const b = await newPage('b');
    const res = await b.goto(secondLink);
    assert.equal(res.status(), 200);
    assert.equal(pathOf(b), '/login/link', 'no redirect');
    await b.getByRole('heading', { name: 'Sign in' }).waitFor();
    const card = b.locator('section.card');
    assert.equal((await card.locator('p').first().innerText()).trim(), `Sign in as ${USER.email}?`);
    assert.match(await card.innerText(), /opened in a different browser/);
    assert.ok(await b.getByRole('button', { name: 'Sign in', exact: true }).isVisible());
    await screenshot(b, 'magic-confirm');
    // A second look (a mail scanner's GET, a reload) still uses nothing.
    await b.reload();
    await b.getByText(`Sign in as ${USER.email}?`, { exact: true }).waitFor();
  });

  step('"Sign in" there signs browser B in: /account', async () => {
    const b = pages.b;
    const hops = await hopsDuring(b, async () => {
      await b.getByRole('button', { name: 'Sign in', exact: true }).click();
      await b.waitForURL((u) => u.pathname === '/account');
    });
    assert.deepEqual(hops, ['POST /login/link/confirm 303', 'GET /account 200']);
    await expectAccount(b);
  });

  step('used in B, that link can’t be used in A either, and A stays signed out', async () => {
    const a = pages.a;
    await expectLinkUnusable(a, secondLink);
    await expectSignedOut(a);
  });

  step('an unknown address gets the same answer, and no mail', async () => {
    const a = pages.a;
    await askForLink(a, UNKNOWN);
    assert.equal(await cardText(a, UNKNOWN), knownAnswer, 'word for word the answer a known address gets');
    assert.ok(await linkCookie(a), 'a link cookie as for a known address');
    // Then a known address: once its mail is in the outbox, the worker has
    // gone past anything queued before it.
    await a.goto('/login');
    await askForLink(a, USER.email);
    await nextLink();
    const mails = await server.outboxMails();
    const toUnknown = mails.filter((m) => m.text.includes(UNKNOWN)).map((m) => m.name);
    assert.deepEqual(toUnknown, [], 'no mail mentions the unknown address');
    assert.deepEqual(
      mails.map((m) => m.name),
      seen,
      'the outbox holds the three links to the known address and nothing else',
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

  test('no page answered an error status but the used links', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, { a: ['GET /login/link 400'], b: [], c: ['GET /login/link 400'] });
  });
});

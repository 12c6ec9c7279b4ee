// Browser end-to-end test of Latchkey's password pages, in headless Chromium:
// sign up → verification mail in the outbox → verify (one click) → sign out → sign in → /account →
// sign out. It starts the already-built binary (LATCHKEY_BIN, default
// ../../target/debug/latchkey) in embedded mode in a fresh temporary folder,
// and saves screenshots of each page at desktop and phone widths to
// screenshots/ for a person to look at.
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

const EMAIL = `e2e-${Date.now().toString(36)}@example.com`;
const NAME = 'Ada Lovelace';
const PASSWORD = 'copper kettle marmalade lighthouse';

// Console errors that are not the page's fault, each matched narrowly.
const TOLERATED_CONSOLE_ERRORS = [];

// ------------------------------------------------------------------ the test

describe('password account in a browser', { timeout: 180_000 }, () => {
  const server = new Server();
  let browser;
  let context;
  let page;
  const problems = [];
  const documents = [];

  let releaseProcess = () => {};

  before(async () => {
    releaseProcess = guardProcess(server);
    await server.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: VIEWPORTS.desktop, baseURL: server.url });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
    page = await context.newPage();
    watchPage(page, problems, documents, TOLERATED_CONSOLE_ERRORS);
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

  // Each step leaves the browser where the next one starts.
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);

  step('the sign-up page has the labelled fields and a working show-password toggle', async () => {
    await page.goto('/signup');
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    await screenshot(page, 'signup');

    await page.getByLabel('Name', { exact: true }).fill(NAME);
    await page.getByLabel('Email', { exact: true }).fill(EMAIL);
    const password = page.getByLabel('Password', { exact: true });
    await password.fill(PASSWORD);

    assert.equal(await password.getAttribute('type'), 'password');
    await page.getByRole('button', { name: 'Show password', exact: true }).click();
    assert.equal(await password.getAttribute('type'), 'text', 'the toggle shows the password');
    await page.getByRole('button', { name: 'Hide password', exact: true }).click();
    assert.equal(await password.getAttribute('type'), 'password', 'the toggle hides it again');
    assert.equal(await password.inputValue(), PASSWORD, 'toggling keeps what was typed');
  });

  step('"Create account" answers "Check your email"', async () => {
    await page.getByRole('button', { name: 'Create account', exact: true }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    assert.ok(await page.getByText(EMAIL).first().isVisible(), 'the page names the address');
    await screenshot(page, 'check-email');
  });

  let verifyLink;
  step('the verification mail lands in the outbox with a link to the public URL', async () => {
    const mail = await server.waitForMail(EMAIL);
    const m = mail.match(new RegExp(`${escapeRe(server.url)}/email/verify\\?token=[A-Za-z0-9_\\-.~%]+`));
    assert.ok(m, `no verification link to ${server.url} in the mail:\n${mail}`);
    verifyLink = m[0];
  });

  step('the link shows the address and asks for one click', async () => {
    await page.goto(verifyLink);
    await page.getByRole('heading', { name: 'Confirm your email address' }).waitFor();
    assert.ok(await page.getByText(EMAIL).isVisible(), 'the verify page shows the address');
    await screenshot(page, 'verify');
  });

  step('with the password given, "Verify email" confirms and signs in', async () => {
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Verify email', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    const status = page.getByRole('status');
    await status.waitFor();
    assert.match(await status.innerText(), /is confirmed/);
    assert.ok(await page.getByText('Verified', { exact: true }).isVisible(), 'the email is marked verified');
  });

  step('"Sign out" from the account page', async () => {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/login');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await screenshot(page, 'login');
  });

  step('a wrong password is refused with an alert', async () => {
    await page.getByLabel('Email', { exact: true }).fill(EMAIL);
    await page.getByLabel('Password', { exact: true }).fill('not the password at all');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /don['’]t match/);
    assert.equal(pathOf(page), '/login');
    await screenshot(page, 'login-error');
  });

  step('the show-password toggle works on the sign-in page too', async () => {
    const password = page.getByLabel('Password', { exact: true });
    assert.equal(await password.getAttribute('type'), 'password');
    const show = page.getByRole('button', { name: 'Show password', exact: true });
    assert.equal(await show.getAttribute('aria-pressed'), 'false');
    await show.click();
    assert.equal(await password.getAttribute('type'), 'text');
    const hide = page.getByRole('button', { name: 'Hide password', exact: true });
    assert.equal(await hide.getAttribute('aria-pressed'), 'true');
    await hide.click();
    assert.equal(await password.getAttribute('type'), 'password');
  });

  step('signing in lands on /account, verified, with this device listed', async () => {
    await page.getByLabel('Email', { exact: true }).fill(EMAIL);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    await page.getByRole('heading', { name: NAME }).waitFor();
    assert.ok(await page.getByText(EMAIL, { exact: true }).isVisible(), 'the account page shows the email');
    assert.ok(await page.getByText('Verified', { exact: true }).isVisible(), 'the email is marked verified');
    assert.equal(await page.getByText('Not verified', { exact: true }).count(), 0);
    assert.ok(await page.getByText('This device', { exact: true }).isVisible(), 'this session is listed');
    await screenshot(page, 'account');
  });

  step('GET /logout asks to confirm; "Stay signed in" goes back', async () => {
    await page.goto('/logout');
    await page.getByRole('heading', { name: 'Sign out?' }).waitFor();
    assert.ok(await page.getByText(EMAIL).isVisible(), 'the confirmation names the account');
    assert.ok(await page.getByRole('button', { name: 'Sign out', exact: true }).isVisible());
    await screenshot(page, 'logout');
    await page.getByRole('link', { name: 'Stay signed in' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
  });

  step('"Sign out" ends the session: "You are signed out.", and /account sends to /login', async () => {
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/login');
    const status = page.getByRole('status');
    await status.waitFor();
    assert.equal((await status.innerText()).trim(), 'You are signed out.');
    await screenshot(page, 'signed-out');

    const res = await page.goto('/account');
    assert.equal(pathOf(page), '/login', 'a signed-out visit to /account lands on /login');
    assert.ok(res.request().redirectedFrom(), '/account answered with a redirect');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  // Run the steps in order; once one fails the rest are skipped, not failed.
  const run = runSteps(steps, { where: () => (page ? ` (page: ${page.url()})` : ''), server });

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no page answered an error status', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, []);
  });
});

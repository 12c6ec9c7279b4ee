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
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.LATCHKEY_BIN
  ? path.resolve(process.env.LATCHKEY_BIN)
  : path.resolve(HERE, '../../target/debug/latchkey');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = path.join(HERE, 'screenshots');
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
// The stylesheet has a dark scheme too: one more picture of each page in it.
const SHOT_VARIANTS = [
  ['desktop', VIEWPORTS.desktop, 'light'],
  ['phone', VIEWPORTS.phone, 'light'],
  ['phone-dark', VIEWPORTS.phone, 'dark'],
];

const STARTUP_DEADLINE_MS = 30_000;
const MAIL_DEADLINE_MS = 15_000;
const ACTION_TIMEOUT_MS = 15_000;

const EMAIL = `e2e-${Date.now().toString(36)}@example.com`;
const NAME = 'Ada Lovelace';
const PASSWORD = 'copper kettle marmalade lighthouse';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** The environment without any LATCHKEY_* variable of the caller's. */
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LATCHKEY_')) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Quoted-printable to text: soft line breaks out, =XX to bytes (UTF-8). */
function decodeQuotedPrintable(s) {
  const joined = s.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const c = joined[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(joined.slice(i + 1, i + 3))) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

// ------------------------------------------------------------------ server

class Server {
  constructor() {
    this.dir = null;
    this.child = null;
    this.log = [];
    this.port = 0;
    this.exited = null;
  }

  get url() {
    return `http://localhost:${this.port}`;
  }

  get outbox() {
    return path.join(this.dir, 'data', 'outbox');
  }

  logTail(lines = 40) {
    return this.log.join('').split('\n').slice(-lines).join('\n');
  }

  async start() {
    if (!fs.existsSync(BIN)) {
      throw new Error(`no Latchkey binary at ${BIN}: build it with \`cargo build -p latchkey\` or set LATCHKEY_BIN`);
    }
    this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-e2e-'));
    // A port picked free can be taken before the server binds it: try again.
    let lastError;
    for (let attempt = 1; attempt <= 3; attempt++) {
      this.port = await freePort();
      try {
        await this.spawnAndWait();
        return;
      } catch (e) {
        lastError = e;
        await this.stop();
      }
    }
    throw lastError;
  }

  async spawnAndWait() {
    this.log = [];
    this.exited = null;
    const child = spawn(BIN, ['serve'], {
      cwd: this.dir,
      env: cleanEnv({
        LATCHKEY_SERVER__BIND: `127.0.0.1:${this.port}`,
        LATCHKEY_SERVER__PUBLIC_URL: this.url,
        LATCHKEY_PASSWORDS__BCRYPT_COST: '10',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout.on('data', (d) => this.log.push(d.toString()));
    child.stderr.on('data', (d) => this.log.push(d.toString()));
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
      child.once('error', (err) => {
        this.exited = { error: err };
        resolve();
      });
    });

    const deadline = Date.now() + STARTUP_DEADLINE_MS;
    for (;;) {
      if (this.exited) {
        throw new Error(`latchkey serve exited early (${JSON.stringify(this.exited)}):\n${this.logTail()}`);
      }
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/healthz`, {
          signal: AbortSignal.timeout(2000),
          headers: { connection: 'close' },
        });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`GET /healthz did not answer 200 within ${STARTUP_DEADLINE_MS} ms:\n${this.logTail()}`);
      }
      await sleep(100);
    }
  }

  async stop() {
    const child = this.child;
    if (child && !this.exited) {
      child.kill('SIGTERM');
      let timer;
      const graceful = await Promise.race([
        this.exitPromise.then(() => true),
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(false), 5000);
        }),
      ]);
      clearTimeout(timer);
      if (!graceful) {
        child.kill('SIGKILL');
        await this.exitPromise;
      }
    }
    this.child = null;
  }

  killNow() {
    if (this.child && !this.exited) this.child.kill('SIGKILL');
  }

  async removeDir() {
    if (this.dir) await fsp.rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  /** The first .eml in the outbox whose text mentions `needle`, decoded. */
  async waitForMail(needle) {
    const deadline = Date.now() + MAIL_DEADLINE_MS;
    for (;;) {
      let names = [];
      try {
        names = (await fsp.readdir(this.outbox)).filter((n) => n.endsWith('.eml')).sort();
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;
      }
      for (const name of names) {
        const raw = await fsp.readFile(path.join(this.outbox, name), 'utf8');
        const text = decodeQuotedPrintable(raw);
        if (text.includes(needle)) return text;
      }
      if (Date.now() > deadline) {
        throw new Error(`no mail for ${needle} in ${this.outbox} within ${MAIL_DEADLINE_MS} ms (files: ${names.join(', ') || 'none'})`);
      }
      await sleep(100);
    }
  }
}

// ------------------------------------------------------------------ browser

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Console errors that are not the page's fault, each matched narrowly.
const TOLERATED_CONSOLE_ERRORS = [];

/**
 * Console errors and uncaught exceptions of every page, with the page's URL.
 * A non-2xx answer to the page's own navigation is logged by Chromium as
 * "Failed to load resource"; those are collected apart in `documents` so the
 * test can check that the only one is the deliberate wrong-password attempt.
 */
function watchPage(page, problems, documents) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const at = msg.location()?.url;
    const ownDocument = !at || at === page.url();
    if (ownDocument && /^Failed to load resource: the server responded with a status of \d+/.test(text)) return;
    if (TOLERATED_CONSOLE_ERRORS.some((ok) => ok(text, at))) return;
    problems.push(`console error on ${page.url()}: ${text}${at && at !== page.url() ? ` (${at})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception on ${page.url()}: ${err.message}`));
  page.on('response', (res) => {
    const req = res.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame() && res.status() >= 400) {
      documents.push(`${req.method()} ${new URL(res.url()).pathname} ${res.status()}`);
    }
  });
}

async function screenshot(page, name) {
  await fsp.mkdir(SHOTS, { recursive: true });
  const original = page.viewportSize();
  for (const [label, size, colorScheme] of SHOT_VARIANTS) {
    await page.setViewportSize(size);
    await page.emulateMedia({ colorScheme });
    await page.screenshot({ path: path.join(SHOTS, `${name}-${label}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize(original);
}

function pathOf(page) {
  return new URL(page.url()).pathname;
}

// ------------------------------------------------------------------ the test

describe('password account in a browser', { timeout: 180_000 }, () => {
  const server = new Server();
  let browser;
  let context;
  let page;
  const problems = [];
  const documents = [];

  const onSignal = () => {
    server.killNow();
    process.exit(130);
  };
  const onExit = () => server.killNow();

  before(async () => {
    process.on('exit', onExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    await server.start();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: VIEWPORTS.desktop, baseURL: server.url });
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
      await server.removeDir();
      process.off('exit', onExit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
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
  let failed = false;
  for (const [name, fn] of steps) {
    test(name, async (t) => {
      if (failed) return t.skip('an earlier step failed');
      try {
        await fn();
      } catch (e) {
        failed = true;
        const where = page ? ` (page: ${page.url()})` : '';
        e.message += `${where}\n--- server log (tail) ---\n${server.logTail(20)}`;
        throw e;
      }
    });
  }

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no page answered an error status', (t) => {
    if (failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, []);
  });
});

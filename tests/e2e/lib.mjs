// What the browser tests share: the Latchkey server they start (the
// already-built binary in embedded mode in a fresh temporary folder) and its
// CLI, the Chromium they drive, screenshots, console watching and the
// step-by-step runner.
import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.LATCHKEY_BIN
  ? path.resolve(process.env.LATCHKEY_BIN)
  : path.resolve(HERE, '../../target/debug/latchkey');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SHOTS = path.join(HERE, 'screenshots');
export const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
// The stylesheet has a dark scheme too: one more picture of each page in it.
export const SHOT_VARIANTS = [
  ['desktop', VIEWPORTS.desktop, 'light'],
  ['phone', VIEWPORTS.phone, 'light'],
  ['phone-dark', VIEWPORTS.phone, 'dark'],
];

export const STARTUP_DEADLINE_MS = 30_000;
export const MAIL_DEADLINE_MS = 15_000;
export const ACTION_TIMEOUT_MS = 15_000;
export const CLI_DEADLINE_MS = 30_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/** The environment without any LATCHKEY_* variable of the caller's. */
export function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LATCHKEY_')) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Quoted-printable to text: soft line breaks out, =XX to bytes (UTF-8). */
export function decodeQuotedPrintable(s) {
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

export class Server {
  /** `env`: more variables for `serve` and the CLI (`extraEnv`, settable before `start`). */
  constructor({ env = {} } = {}) {
    this.dir = null;
    this.child = null;
    this.log = [];
    this.port = 0;
    this.exited = null;
    this.extraEnv = env;
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

  /** The environment `serve` runs with; the CLI gets the same one. */
  env() {
    return cleanEnv({
      LATCHKEY_SERVER__BIND: `127.0.0.1:${this.port}`,
      LATCHKEY_SERVER__PUBLIC_URL: this.url,
      LATCHKEY_PASSWORDS__BCRYPT_COST: '10',
      ...this.extraEnv,
    });
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
      env: this.env(),
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

  /**
   * Runs `latchkey ARGS…` against this server's data (same folder, same
   * environment); `input` goes to its standard input. Resolves to its standard
   * output; rejects on a non-zero exit or after CLI_DEADLINE_MS.
   */
  cli(args, { input } = {}) {
    return new Promise((resolve, reject) => {
      const child = spawn(BIN, args, { cwd: this.dir, env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] });
      const out = [];
      const err = [];
      child.stdout.on('data', (d) => out.push(d));
      child.stderr.on('data', (d) => err.push(d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`latchkey ${args.join(' ')} did not finish within ${CLI_DEADLINE_MS} ms`));
      }, CLI_DEADLINE_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        if (code === 0) resolve(stdout);
        else reject(new Error(`latchkey ${args.join(' ')} exited with ${code ?? signal}:\n${stderr}${stdout}`));
      });
      child.stdin.end(input ?? '');
    });
  }

  /** `cli` with `--json` output parsed. */
  async cliJson(args, options) {
    const stdout = await this.cli(args, options);
    try {
      return JSON.parse(stdout);
    } catch (e) {
      throw new Error(`latchkey ${args.join(' ')} printed no JSON (${e.message}):\n${stdout}`);
    }
  }

  /** Every .eml in the outbox so far, oldest first: [{ name, text }], text decoded. */
  async outboxMails() {
    let names = [];
    try {
      names = (await fsp.readdir(this.outbox)).filter((n) => n.endsWith('.eml')).sort();
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    const mails = [];
    for (const name of names) {
      const raw = await fsp.readFile(path.join(this.outbox, name), 'utf8');
      mails.push({ name, text: decodeQuotedPrintable(raw) });
    }
    return mails;
  }

  /**
   * The first .eml in the outbox whose text mentions `needle`, decoded,
   * passing over the files named in `except` (mails already read).
   * `withName` resolves to { name, text } instead of the text.
   */
  async waitForMail(needle, { except = [], withName = false } = {}) {
    const skip = new Set(except);
    const deadline = Date.now() + MAIL_DEADLINE_MS;
    for (;;) {
      const mails = await this.outboxMails();
      const found = mails.find((m) => !skip.has(m.name) && m.text.includes(needle));
      if (found) return withName ? found : found.text;
      if (Date.now() > deadline) {
        const names = mails.map((m) => m.name).join(', ') || 'none';
        throw new Error(`no new mail for ${needle} in ${this.outbox} within ${MAIL_DEADLINE_MS} ms (files: ${names})`);
      }
      await sleep(100);
    }
  }
}

/**
 * Kills the server's process if the test process exits or is interrupted
 * before `after` stops it. Returns the function that removes these hooks.
 */
export function guardProcess(server) {
  const onSignal = () => {
    server.killNow();
    process.exit(130);
  };
  const onExit = () => server.killNow();
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

// ------------------------------------------------------------------ browser

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Console errors and uncaught exceptions of every page, with the page's URL.
 * A non-2xx answer to the page's own navigation is logged by Chromium as
 * "Failed to load resource"; those are collected apart in `documents` so the
 * test can check which ones there were. `tolerated` holds functions
 * (text, url) → true for console errors that are not the page's fault, each
 * matching narrowly.
 */
export function watchPage(page, problems, documents, tolerated = []) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const at = msg.location()?.url;
    const ownDocument = !at || at === page.url();
    if (ownDocument && /^Failed to load resource: the server responded with a status of \d+/.test(text)) return;
    if (tolerated.some((ok) => ok(text, at))) return;
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

/** A full-page picture of the page at each of SHOT_VARIANTS, as NAME-VARIANT.png. */
export async function screenshot(page, name) {
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

export function pathOf(page) {
  return new URL(page.url()).pathname;
}

// ------------------------------------------------------------------ steps

/**
 * Registers each [name, fn] of `steps` as a test, run in order; once one
 * fails the rest are skipped, not failed. A failure's message gets `where()`
 * and the tail of the server's log. Returns an object whose `failed` tells
 * whether a step failed.
 */
export function runSteps(steps, { where = () => '', server } = {}) {
  const state = { failed: false };
  for (const [name, fn] of steps) {
    test(name, async (t) => {
      if (state.failed) return t.skip('an earlier step failed');
      try {
        await fn();
      } catch (e) {
        state.failed = true;
        e.message += `${where()}${server ? `\n--- server log (tail) ---\n${server.logTail(20)}` : ''}`;
        throw e;
      }
    });
  }
  return state;
}

// ------------------------------------------------------------------ TOTP (RFC 6238)

// Import declarations are hoisted: this one serves the helpers below.
import { createHmac } from 'node:crypto';

export const TOTP_STEP_SECONDS = 30;
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 to bytes; spaces, dashes and padding are ignored. */
export function base32Decode(text) {
  const clean = text.replace(/[\s=-]/g, '').toUpperCase();
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const i = BASE32_ALPHABET.indexOf(ch);
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
export function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 1_000_000).padStart(6, '0');
}

/** The current 30-second TOTP step. */
export const totpStepNow = () => Math.floor(Date.now() / 1000 / TOTP_STEP_SECONDS);

// ------------------------------------------------------------------ sign-in pages

/** Fills /login's form with `user` ({ email, password }) and presses "Sign in". */
export async function fillSignIn(page, user) {
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email', { exact: true }).fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/**
 * An admin without a second factor signs in on `page`, which is at /login
 * (e.g. sent there by a console page): the password leads to "Add a second
 * step", "Set up authenticator app" takes a code computed here from the key
 * on the page, and "Continue" after the recovery codes finishes the sign-in.
 * Resolves to the key's bytes (to compute later codes with `totp`).
 */
export async function signInAdminSettingUpTotp(page, admin) {
  await fillSignIn(page, admin);
  await page.waitForURL((u) => u.pathname === '/login/mfa');
  await page.getByRole('heading', { name: 'Add a second step' }).waitFor();
  await page.getByRole('link', { name: 'Set up authenticator app' }).click();
  await page.waitForURL((u) => u.pathname === '/login/mfa/totp');
  const text = (await page.locator('p.secret code').innerText()).trim();
  const key = base32Decode(text);
  await page.getByLabel('Code', { exact: true }).fill(totp(key, totpStepNow()));
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
  await page.getByRole('link', { name: 'Continue', exact: true }).click();
  await page.waitForURL((u) => u.pathname.startsWith('/admin'));
  return key;
}

// Browser end-to-end test of two-step verification, in headless Chromium:
//
// - Authenticator app (TOTP): a user made with the CLI signs in with the
//   password, sets up an app on /account (the secret read off the page, the
//   codes computed here with node:crypto), saves the 10 recovery codes; the
//   next sign-in with the password asks for a code on /login/mfa (a wrong
//   one is refused with an alert, the next step's code passes); the one after
//   that passes with a recovery code, which can't be used twice.
// - Passkey: in a browser with Chromium's virtual authenticator (DevTools
//   protocol, WebAuthn domain), another user adds a passkey on /account (their
//   first factor: the recovery codes page comes first); the credential is
//   copied into a new browser (no cookies), where "Sign in with a passkey"
//   signs in without typing anything; there the password asks for a second
//   step, and "Use a security key" with the same passkey gives it; in a third
//   browser /login signs in from its passkey autofill request alone.
// - Security key: a third user adds a USB key.
//
// Screenshots of /login/mfa, the set-up page, the recovery codes and /account
// with its factors go to screenshots/ (prefix mfa-). TOTP codes follow the
// real clock, with no waiting: a code's step can be used once, so the sign-in
// after the set-up gives the next step's code (the server takes ±1 step).
//
// Run: cd tests/e2e && npm ci && node --test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import {
  ACTION_TIMEOUT_MS,
  CHROMIUM,
  CHROMIUM_ARGS,
  Server,
  VIEWPORTS,
  guardProcess,
  pathOf,
  runSteps,
  screenshot,
  sleep,
  watchPage,
} from './lib.mjs';

const STAMP = Date.now().toString(36);
// One user per story, all made with the CLI, none with a second step yet.
const APP_USER = {
  email: `mfa-app-${STAMP}@example.com`,
  name: 'Ada Lovelace',
  password: 'copper kettle marmalade lighthouse',
};
const KEY_USER = {
  email: `mfa-key-${STAMP}@example.com`,
  name: 'Grace Hopper',
  password: 'walnut harbour teaspoon glacier',
};
const SECURITY_KEY_USER = {
  email: `mfa-usb-${STAMP}@example.com`,
  name: 'Alan Turing',
  password: 'pebble orchard lantern saffron',
};

const MFA_TITLE = 'Confirm it’s you';
// Options of WebAuthn.addVirtualAuthenticator (Chrome DevTools protocol).
const PLATFORM_AUTHENTICATOR = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};
// A plain USB key: no discoverable credentials, no PIN.
const USB_SECURITY_KEY = {
  protocol: 'ctap2',
  transport: 'usb',
  hasResidentKey: false,
  hasUserVerification: false,
  automaticPresenceSimulation: true,
};
const WRONG_CODE_MESSAGE = 'That code is not right, or was used already. Wait for the next one and try again.';
const USED_RECOVERY_MESSAGE = 'That recovery code is not right, or was used already.';

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

/** A 6-digit code that is none of the codes of the steps around now. */
function wrongCode(secret) {
  const near = new Set();
  for (let d = -3; d <= 3; d++) near.add(totp(secret, stepNow() + d));
  for (let n = 0; ; n++) {
    const c = String((123456 + n * 111111) % 1_000_000).padStart(6, '0');
    if (!near.has(c)) return c;
  }
}

// ------------------------------------------------------------------ the test

describe('two-step verification in a browser', { timeout: 300_000 }, () => {
  const server = new Server();
  let releaseProcess = () => {};
  let browser;
  const problems = [];
  // Error-status navigations, per browser.
  const documents = { app: [], key: [], other: [], autofill: [], usb: [] };
  const pages = {};
  // The virtual authenticator of each browser that has one: { cdp, id }.
  const authenticators = {};

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
   * A virtual authenticator of Chromium's on `key`'s page: by default a
   * platform one (a passkey store with user verification).
   */
  async function addAuthenticator(key, options = PLATFORM_AUTHENTICATOR) {
    const p = pages[key];
    const cdp = await p.context().newCDPSession(p);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options });
    authenticators[key] = { cdp, id: authenticatorId };
    return authenticators[key];
  }

  /**
   * Each navigator.credentials.get() that `p`'s pages make from now on, in a
   * list that outlives navigations: 'conditional' (the autofill) or 'modal'.
   */
  async function webAuthnGets(p) {
    const gets = [];
    await p.exposeFunction('__noteWebAuthnGet', (mode) => gets.push(mode));
    await p.addInitScript(() => {
      const get = navigator.credentials.get.bind(navigator.credentials);
      navigator.credentials.get = (options) => {
        window.__noteWebAuthnGet(options?.mediation === 'conditional' ? 'conditional' : 'modal');
        return get(options);
      };
    });
    return gets;
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

  async function credentialsOf(key) {
    const { cdp, id } = authenticators[key];
    return (await cdp.send('WebAuthn.getCredentials', { authenticatorId: id })).credentials;
  }

  async function signInWithPassword(p, user) {
    await p.goto('/login');
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await p.getByLabel('Email', { exact: true }).fill(user.email);
    await p.getByLabel('Password', { exact: true }).fill(user.password);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** From /account: "Sign out" (through the confirmation, if there is one) to /login. */
  async function signOut(p) {
    await p.goto('/account');
    await p.getByRole('button', { name: 'Sign out', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/login' || u.pathname === '/logout');
    if (pathOf(p) === '/logout') {
      await p.getByRole('heading', { name: 'Sign out?' }).waitFor();
      await p.getByRole('button', { name: 'Sign out', exact: true }).click();
      await p.waitForURL((u) => u.pathname === '/login');
    }
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
  }

  async function expectAccount(p, user) {
    await p.waitForURL((u) => u.pathname === '/account');
    await p.getByRole('heading', { name: user.name }).waitFor();
    assert.ok(await p.getByText(user.email, { exact: true }).isVisible(), 'the account page shows the email');
    assert.ok(await p.getByText('This device', { exact: true }).isVisible(), 'this session is listed');
  }

  /** On /login/mfa for `user`, waiting for the second step. */
  async function expectMfaPage(p, user) {
    await p.waitForURL((u) => u.pathname === '/login/mfa');
    assert.equal(new URL(p.url()).searchParams.get('next'), '/account');
    await p.getByRole('heading', { name: MFA_TITLE }).waitFor();
    assert.equal((await p.locator('section.card .lede').innerText()).trim(), `Signing in as ${user.email}`);
    // Not signed in yet: /account sends elsewhere (asked with this browser's
    // cookies beside the page, which keeps its form).
    const peek = await p.context().request.get('/account', { maxRedirects: 0 });
    assert.equal(peek.status(), 303, 'no session before the second step');
  }

  /** The recovery codes page: 10 distinct codes; returns them. */
  async function readRecoveryCodes(p) {
    await p.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    const codes = await p.locator('ul.codes li code').allInnerTexts();
    assert.equal(codes.length, 10, `10 recovery codes: ${codes.join(', ')}`);
    assert.equal(new Set(codes).size, 10, 'all different');
    for (const c of codes) assert.match(c, /^[A-Za-z0-9-]{12,}$/, `a recovery code: ${c}`);
    return codes;
  }

  /** The "Two-step verification" card of /account. */
  const security = (p) => p.locator('section#security');

  before(async () => {
    releaseProcess = guardProcess(server);
    await server.start();
    for (const u of [APP_USER, KEY_USER, SECURITY_KEY_USER]) {
      const args = ['user', 'create', '--email', u.email, '--name', u.name, '--password-stdin', '--verified', '--json'];
      await server.cliJson(args, { input: `${u.password}\n` });
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
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

  test('the TOTP helper gives the RFC 6238 test vector', () => {
    // RFC 6238 appendix B, SHA-1: T = 59 s is step 1, code 94287082 (8 digits).
    const secret = base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    assert.equal(secret.toString('ascii'), '12345678901234567890');
    assert.equal(totp(secret, 1), '287082');
    assert.equal(totp(secret, Math.floor(1111111109 / 30)), '081804');
  });

  // Each step leaves the browsers where the next one starts.
  const steps = [];
  const step = (name, fn) => steps.push([name, fn]);

  // ---------------------------------------------------------- authenticator app

  step('without a second step, the password signs in at once; /account offers "Set up authenticator app"', async () => {
    const p = await newPage('app');
    await signInWithPassword(p, APP_USER);
    await expectAccount(p, APP_USER);
    const card = security(p);
    await card.getByRole('heading', { name: 'Two-step verification' }).waitFor();
    assert.ok(await card.getByText('Codes from an app on your phone', { exact: true }).isVisible());
    assert.ok(await card.getByRole('link', { name: 'Set up authenticator app' }).isVisible());
    assert.ok(await card.getByRole('button', { name: 'Add a security key', exact: true }).isVisible());
    assert.ok(await card.getByRole('button', { name: 'Add a passkey', exact: true }).isVisible());
    assert.equal(await card.getByText(/recovery codes? left/).count(), 0, 'no recovery codes without a factor');
  });

  let secret;
  step('"Set up authenticator app" shows a QR code and the key as text', async () => {
    const p = pages.app;
    await security(p).getByRole('link', { name: 'Set up authenticator app' }).click();
    await p.waitForURL((u) => u.pathname === '/account/totp');
    await p.getByRole('heading', { name: 'Set up authenticator app' }).waitFor();
    const qr = p.getByRole('img', { name: 'QR code to add Latchkey to your authenticator app' });
    await qr.waitFor();
    assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'the QR image loads');
    const text = (await p.locator('p.secret code').innerText()).trim();
    assert.match(text, /^[A-Z2-7 ]+=*$/, `a base32 key: ${text}`);
    secret = base32Decode(text);
    assert.ok(secret.length >= 16, `a key of ${secret.length} bytes`);
    assert.ok(await p.getByLabel('Code', { exact: true }).isVisible());
    assert.ok(await p.getByRole('link', { name: 'Cancel' }).isVisible());
    await screenshot(p, 'mfa-totp-setup');
  });

  step('a wrong code on the set-up page is refused with an alert, with the same key', async () => {
    const p = pages.app;
    const before = (await p.locator('p.secret code').innerText()).trim();
    await p.getByLabel('Code', { exact: true }).fill(wrongCode(secret));
    await p.getByRole('button', { name: 'Verify', exact: true }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /not right/);
    assert.equal(pathOf(p), '/account/totp');
    assert.equal((await p.locator('p.secret code').innerText()).trim(), before, 'the same key to try again');
  });

  let enrolledStep;
  let recoveryCodes;
  step('the right code: "Save your recovery codes" with 10 codes', async () => {
    const p = pages.app;
    enrolledStep = stepNow();
    await p.getByLabel('Code', { exact: true }).fill(totp(secret, enrolledStep));
    await p.getByRole('button', { name: 'Verify', exact: true }).click();
    recoveryCodes = await readRecoveryCodes(p);
    await screenshot(p, 'mfa-recovery-codes');
  });

  step('"Continue" goes back to /account: the app is on, 10 recovery codes left', async () => {
    const p = pages.app;
    await p.getByRole('link', { name: 'Continue', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/account');
    assert.equal(new URL(p.url()).searchParams.get('notice'), 'totp-added');
    assert.equal((await p.getByRole('status').innerText()).trim(), 'Your authenticator app is set up.');
    const card = security(p);
    assert.ok(await card.getByText('On: a code from the app after your first step', { exact: true }).isVisible());
    assert.ok(await card.getByRole('button', { name: 'Remove authenticator app' }).isVisible());
    assert.equal(await card.getByRole('link', { name: 'Set up authenticator app' }).count(), 0);
    assert.match(await card.innerText(), /10 recovery codes left\./);
  });

  step('signed out, the password alone now leads to /login/mfa ("Confirm it’s you")', async () => {
    const p = pages.app;
    await signOut(p);
    await signInWithPassword(p, APP_USER);
    await expectMfaPage(p, APP_USER);
    assert.ok(await p.getByLabel('Code', { exact: true }).isVisible());
    assert.ok(await p.getByRole('button', { name: 'Verify', exact: true }).isVisible());
    assert.equal(await p.getByRole('button', { name: 'Use a security key' }).count(), 0, 'no key on this account');
    assert.ok(await p.getByText('Lost your device?', { exact: true }).isVisible());
    await screenshot(p, 'mfa-login-code');
  });

  step('a wrong code is refused with an alert, and the page stays', async () => {
    const p = pages.app;
    await p.getByLabel('Code', { exact: true }).fill(wrongCode(secret));
    await p.getByRole('button', { name: 'Verify', exact: true }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.innerText()).trim(), WRONG_CODE_MESSAGE);
    // The answer to the form's post, the same page with the reason.
    assert.equal(pathOf(p), '/login/mfa/code');
    await p.getByRole('heading', { name: MFA_TITLE }).waitFor();
    assert.ok(await p.getByLabel('Code', { exact: true }).isVisible(), 'the code field, to try again');
    await screenshot(p, 'mfa-login-code-error');
  });

  step('the code of the step after the one used to set up passes: /account', async () => {
    const p = pages.app;
    // The set-up used its step; the server takes one step either side of now.
    const loginStep = Math.max(enrolledStep + 1, stepNow());
    await p.getByLabel('Code', { exact: true }).fill(totp(secret, loginStep));
    await p.getByRole('button', { name: 'Verify', exact: true }).click();
    await expectAccount(p, APP_USER);
    await screenshot(p, 'mfa-account-app');
  });

  step('with the password again, "Lost your device?" → a recovery code signs in; 9 left', async () => {
    const p = pages.app;
    await signOut(p);
    await signInWithPassword(p, APP_USER);
    await expectMfaPage(p, APP_USER);
    await p.getByText('Lost your device?', { exact: true }).click();
    await p.getByLabel('Recovery code', { exact: true }).fill(recoveryCodes[0]);
    await screenshot(p, 'mfa-login-recovery');
    await p.getByRole('button', { name: 'Use a recovery code', exact: true }).click();
    await expectAccount(p, APP_USER);
    assert.match(await security(p).innerText(), /9 recovery codes left\./);
  });

  step('the same recovery code again is refused; "Cancel and sign out" goes back to /login', async () => {
    const p = pages.app;
    await signOut(p);
    await signInWithPassword(p, APP_USER);
    await expectMfaPage(p, APP_USER);
    await p.getByText('Lost your device?', { exact: true }).click();
    await p.getByLabel('Recovery code', { exact: true }).fill(recoveryCodes[0]);
    await p.getByRole('button', { name: 'Use a recovery code', exact: true }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    assert.equal((await alert.innerText()).trim(), USED_RECOVERY_MESSAGE);
    assert.equal(pathOf(p), '/login/mfa/recovery');
    await p.getByRole('button', { name: 'Cancel and sign out', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/login');
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    const peek = await p.context().request.get('/login/mfa', { maxRedirects: 0 });
    assert.equal(peek.status(), 303, 'the waiting sign-in is gone');
  });

  // ---------------------------------------------------------- passkey

  step('with a virtual authenticator, "Add a passkey" on /account: the recovery codes come first', async () => {
    const p = await newPage('key');
    await addAuthenticator('key');
    await signInWithPassword(p, KEY_USER);
    await expectAccount(p, KEY_USER);
    await security(p).getByRole('button', { name: 'Add a passkey', exact: true }).click();
    await readRecoveryCodes(p);
    assert.equal(pathOf(p), '/account/keys');
    const creds = await credentialsOf('key');
    assert.equal(creds.length, 1, 'the authenticator holds one credential');
    assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential (passkey)');
    assert.equal(creds[0].rpId, 'localhost');
  });

  step('"Continue": /account lists the passkey', async () => {
    const p = pages.key;
    await p.getByRole('link', { name: 'Continue', exact: true }).click();
    await p.waitForURL((u) => u.pathname === '/account');
    assert.equal(new URL(p.url()).searchParams.get('notice'), 'key-added');
    assert.equal((await p.getByRole('status').innerText()).trim(), 'Added. You can use it the next time you sign in.');
    const card = security(p);
    const remove = p.getByRole('button', { name: 'Remove Passkey', exact: true });
    const row = card.locator('ul.sessions > li').filter({ has: remove });
    assert.equal(await row.count(), 1, 'one passkey row');
    assert.equal((await row.locator('strong').first().innerText()).trim(), 'Passkey');
    assert.match(await row.locator('p.hint').first().innerText(), /^Passkey(, synced)? · added /);
    assert.match(await card.innerText(), /10 recovery codes left\./);
    await screenshot(p, 'mfa-account');
  });

  let passkey;
  step('in a new browser (no cookies) holding the passkey, "Sign in with a passkey" signs in: /account', async () => {
    [passkey] = await credentialsOf('key');
    const p = await newPage('other');
    const gets = await webAuthnGets(p);
    const { cdp, id } = await addAuthenticator('other');
    assert.deepEqual(await p.context().cookies(server.url), [], 'a browser without cookies');
    await p.goto('/login');
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await p.getByLabel('Email', { exact: true }).getAttribute('autocomplete'), 'username webauthn');
    // The page offers passkeys in the email field's autofill (a conditional
    // request, waiting). Chromium's virtual authenticator answers such a
    // request at once if it holds a passkey then (see the next step), so the
    // passkey comes in only now, to test the button.
    for (const deadline = Date.now() + ACTION_TIMEOUT_MS; !gets.includes('conditional'); ) {
      assert.ok(Date.now() < deadline, 'the page started a conditional request');
      await sleep(50);
    }
    await cdp.send('WebAuthn.addCredential', { authenticatorId: id, credential: passkey });
    const hops = await hopsDuring(p, async () => {
      await p.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
      await expectAccount(p, KEY_USER);
    });
    assert.deepEqual(hops, ['POST /login/passkey 303', 'GET /account 200']);
    assert.deepEqual(gets, ['conditional', 'modal'], 'the button ran a modal request');
    assert.equal(await p.getByLabel('Email', { exact: true }).count(), 0);
    const row = security(p).locator('ul.sessions > li').filter({ hasText: 'Passkey' });
    assert.match(await row.locator('p.hint').first().innerText(), / · last used /, 'the passkey was used');
  });

  step('there, the password asks for a second step; "Use a security key" with the passkey gives it', async () => {
    const p = pages.other;
    const { cdp, id } = authenticators.other;
    // Held during /login, the passkey would sign in from the autofill at
    // once: it is taken out and put back once the password is in.
    const [held] = await credentialsOf('other');
    await cdp.send('WebAuthn.clearCredentials', { authenticatorId: id });
    await signOut(p);
    await signInWithPassword(p, KEY_USER);
    await expectMfaPage(p, KEY_USER);
    assert.equal(await p.getByLabel('Code', { exact: true }).count(), 0, 'no authenticator app on this account');
    assert.ok(await p.getByText('Lost your device?', { exact: true }).isVisible());
    await screenshot(p, 'mfa-login-key');
    await cdp.send('WebAuthn.addCredential', { authenticatorId: id, credential: held });
    const hops = await hopsDuring(p, async () => {
      await p.getByRole('button', { name: 'Use a security key', exact: true }).click();
      await expectAccount(p, KEY_USER);
    });
    assert.deepEqual(hops, ['POST /login/mfa/key 303', 'GET /account 200']);
  });

  step('in another new browser holding the passkey, /login signs in from the autofill request alone', async () => {
    // The copy as it is now: the server refuses a signature counter that
    // does not go up (a cloned authenticator).
    const [latest] = await credentialsOf('other');
    const p = await newPage('autofill');
    const gets = await webAuthnGets(p);
    const { cdp, id } = await addAuthenticator('autofill');
    await cdp.send('WebAuthn.addCredential', { authenticatorId: id, credential: latest });
    const hops = await hopsDuring(p, async () => {
      await p.goto('/login');
      await expectAccount(p, KEY_USER);
    });
    assert.deepEqual(hops, ['GET /login 200', 'POST /login/passkey 303', 'GET /account 200']);
    assert.deepEqual(gets, ['conditional'], 'no click: the autofill request did it');
  });

  // Run the steps in order; once one fails the rest are skipped, not failed.
  const run = runSteps(steps, {
    where: () =>
      Object.entries(pages)
        .map(([k, p]) => ` (page ${k}: ${p.url()})`)
        .join(''),
    server,
  });

  test(
    '"Add a security key" on /account with a USB key: the recovery codes, then /account lists it',
    async (t) => {
      if (run.failed) return t.skip('an earlier step failed');
      const p = await newPage('usb');
      await addAuthenticator('usb', USB_SECURITY_KEY);
      await signInWithPassword(p, SECURITY_KEY_USER);
      await expectAccount(p, SECURITY_KEY_USER);
      const form = security(p).locator('form[data-kind="security_key"]');
      await form.getByRole('button', { name: 'Add a security key', exact: true }).click();
      const said = form.locator('[data-webauthn-status]');
      const codes = p.getByRole('heading', { name: 'Save your recovery codes' });
      await Promise.race([said.waitFor({ state: 'visible' }), codes.waitFor()]);
      assert.ok(!(await said.isVisible()), `the page said: ${await said.innerText().catch(() => '')}`);
      await readRecoveryCodes(p);
      await p.getByRole('link', { name: 'Continue', exact: true }).click();
      await p.waitForURL((u) => u.pathname === '/account');
      const remove = p.getByRole('button', { name: 'Remove Security key', exact: true });
      const row = security(p).locator('ul.sessions > li').filter({ has: remove });
      assert.equal(await row.count(), 1, 'one security key row');
      assert.match(await row.locator('p.hint').first().innerText(), /^Security key · added /);
    },
  );

  test('no page logged a console error or threw', () => {
    assert.deepEqual(problems, []);
  });

  test('no page answered an error status but the refused codes', (t) => {
    if (run.failed) return t.skip('an earlier step failed');
    assert.deepEqual(documents, {
      app: ['POST /account/totp 422', 'POST /login/mfa/code 422', 'POST /login/mfa/recovery 422'],
      key: [],
      other: [],
      autofill: [],
      usb: [],
    });
  });
});

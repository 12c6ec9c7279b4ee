// A tiny relying app ("Demo Notes") for the browser tests: node:http and
// openid-client, the certified relying-party library, with nothing of
// Latchkey's own. It signs its visitor in with the authorization code flow and
// PKCE (S256), checks state, nonce and `iss` (RFC 9207) and the ID token's
// signature against the provider's JWKS, then shows who signed in.
//
//   GET /          a "Sign in with Latchkey" link to /login
//   GET /login     remembers a PKCE verifier, state and nonce for this browser
//                  (in memory, keyed by state; the state in a cookie) and
//                  redirects to the provider's authorization endpoint
//   GET /callback  completes the grant and shows "Signed in as <email>", the
//                  ID token's claims, userinfo's email and a "Sign out" link;
//                  or, with status 400, "Sign-in failed: <error>". A signed-in
//                  browser gets a session cookie; its ID token is kept (in
//                  memory, keyed by that cookie) as the logout hint
//   GET /logout    ends this app's session and sends the browser to the
//                  provider's end_session_endpoint (RP-Initiated Logout 1.0)
//                  with id_token_hint (when signed in here),
//                  post_logout_redirect_uri /logged-out and a fresh state
//   GET /logged-out  where the provider sends the browser back: with a state
//                  this app is waiting for, "You are signed out of <name>"
//                  (and any session of this app in this browser ends); else,
//                  with status 400, "Sign-out failed: unexpected state"
//
// Test-only: the app's handle has expectLogout(state), which makes the app
// wait for one more state at /logged-out as if it had sent it itself. The
// tests use it for a sign-out that starts at the provider's /logout rather
// than at this app. It is a function of the handle, not an HTTP endpoint, so
// no page can register a state.
import crypto from 'node:crypto';
import http from 'node:http';
import * as client from 'openid-client';

const SCOPE = 'openid profile email';
// How long a started sign-in, or sign-out, is remembered.
const PENDING_TTL_MS = 10 * 60_000;
// How long this app's own session lasts.
const SESSION_TTL_MS = 60 * 60_000;
const SHOWN_CLAIMS = ['sub', 'email', 'email_verified', 'acr', 'amr'];

const escapeHtml = (v) =>
  String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
</head>
<body>
${body}
</body>
</html>
`;
}

function cookies(req) {
  const jar = {};
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) jar[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return jar;
}

function claimValue(v) {
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(' ') : String(v);
}

/**
 * Starts the app on 127.0.0.1:`port`, as the client `clientId` of `issuer`
 * (discovered first). Without `clientSecret` it is a public client: no client
 * authentication at the token endpoint (token_endpoint_auth_method none),
 * PKCE only. `postLogoutRedirectUri` (default: /logged-out on the redirect
 * URI's origin) must be registered for the client exactly. Resolves to
 * { url, port, clientId, postLogoutRedirectUri, expectLogout(state), close() }.
 */
export async function startRelyingApp({
  port,
  issuer,
  clientId,
  clientSecret,
  redirectUri,
  postLogoutRedirectUri,
  name = 'Demo Notes',
}) {
  const isPublic = !clientSecret;
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    isPublic ? undefined : clientSecret,
    isPublic ? client.None() : undefined,
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
  );
  const callbackBase = new URL(redirectUri);
  const loggedOutUri = postLogoutRedirectUri ?? new URL('/logged-out', callbackBase).href;
  // Cookies on localhost are shared by every port: one name per app.
  const cookieName = `demo_rp_${port}_state`;
  const sessionCookieName = `demo_rp_${port}_session`;
  /** state → { codeVerifier, nonce, expires } */
  const pending = new Map();
  /** session cookie value → { idToken, expires } */
  const sessions = new Map();
  /** state sent to the end_session_endpoint → expires */
  const pendingLogouts = new Map();
  const prune = () => {
    const now = Date.now();
    for (const [s, p] of pending) if (p.expires < now) pending.delete(s);
    for (const [id, s] of sessions) if (s.expires < now) sessions.delete(id);
    for (const [s, expires] of pendingLogouts) if (expires < now) pendingLogouts.delete(s);
  };

  const send = (res, status, html, headers = {}) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(html);
  };
  const clearCookie = `${cookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
  const clearSessionCookie = `${sessionCookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
  /** Ends this browser's session here, if any; returns what it was. */
  const endSession = (req) => {
    const id = cookies(req)[sessionCookieName];
    const session = id ? sessions.get(id) : undefined;
    if (id) sessions.delete(id);
    return session;
  };
  const failed = (res, error, detail) =>
    send(
      res,
      400,
      page(
        `${name}: sign-in failed`,
        `<h1>${escapeHtml(name)}</h1>
<p role="alert" data-testid="error">Sign-in failed: ${escapeHtml(error)}</p>
${detail ? `<p data-testid="error-detail">${escapeHtml(detail)}</p>` : ''}
<p><a href="/login">Sign in with Latchkey</a></p>`,
      ),
      { 'set-cookie': clearCookie },
    );

  async function callback(req, res) {
    prune();
    const state = cookies(req)[cookieName];
    const flow = state && pending.get(state);
    if (!flow) return failed(res, 'no_sign_in_in_progress', 'This browser has no sign-in in progress here.');
    pending.delete(state);

    // The URL as the provider sent the browser to it, on the registered origin.
    const currentUrl = new URL(req.url, callbackBase);
    let tokens;
    try {
      tokens = await client.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: flow.codeVerifier,
        expectedState: state,
        expectedNonce: flow.nonce,
      });
    } catch (e) {
      // An error answer (e.g. access_denied) comes as AuthorizationResponseError
      // once state and iss are checked.
      return failed(res, e.error || e.code || e.name, e.error_description || e.message);
    }
    const claims = tokens.claims();
    let userinfo;
    try {
      userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    } catch (e) {
      return failed(res, `userinfo: ${e.error || e.code || e.name}`, e.error_description || e.message);
    }
    // This browser is signed in here now (a session it had before ends).
    endSession(req);
    const sessionId = crypto.randomBytes(32).toString('base64url');
    sessions.set(sessionId, { idToken: tokens.id_token, expires: Date.now() + SESSION_TTL_MS });
    const rows = SHOWN_CLAIMS.map(
      (c) => `<dt>${c}</dt><dd data-testid="claim-${c}">${escapeHtml(claimValue(claims[c]))}</dd>`,
    ).join('\n');
    send(
      res,
      200,
      page(
        `${name}: signed in`,
        `<h1>${escapeHtml(name)}</h1>
<p data-testid="who">Signed in as ${escapeHtml(claims.email ?? claims.sub)}</p>
<h2>ID token</h2>
<dl>
${rows}
</dl>
<h2>Userinfo</h2>
<dl>
<dt>email</dt><dd data-testid="userinfo-email">${escapeHtml(claimValue(userinfo.email))}</dd>
</dl>
<p>Client authentication: <span data-testid="client-auth">${isPublic ? 'none' : 'client_secret_post'}</span></p>
<p><a href="/logout">Sign out</a></p>
<p><a href="/login">Sign in with Latchkey</a></p>`,
      ),
      {
        'set-cookie': [
          clearCookie,
          `${sessionCookieName}=${sessionId}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${SESSION_TTL_MS / 1000}`,
        ],
      },
    );
  }

  // A sign-out link that is a GET keeps the demo small; a real app would
  // guard it against cross-site requests (a POST form with a CSRF token).
  function logout(req, res) {
    prune();
    const session = endSession(req);
    const state = client.randomState();
    pendingLogouts.set(state, Date.now() + PENDING_TTL_MS);
    const params = { post_logout_redirect_uri: loggedOutUri, state };
    // Without a hint (not signed in here) the provider asks the user.
    if (session) params.id_token_hint = session.idToken;
    const url = client.buildEndSessionUrl(config, params);
    res.writeHead(302, { location: url.href, 'cache-control': 'no-store', 'set-cookie': clearSessionCookie });
    res.end();
  }

  function loggedOut(req, res) {
    prune();
    const state = new URL(req.url, callbackBase).searchParams.get('state');
    if (!state || !pendingLogouts.has(state)) {
      return send(
        res,
        400,
        page(
          `${name}: sign-out failed`,
          `<h1>${escapeHtml(name)}</h1>
<p role="alert" data-testid="error">Sign-out failed: unexpected state</p>
<p><a href="/">${escapeHtml(name)}</a></p>`,
        ),
      );
    }
    pendingLogouts.delete(state);
    // Signed out at the provider, so here too (a sign-out that started there).
    endSession(req);
    send(
      res,
      200,
      page(
        `${name}: signed out`,
        `<h1>${escapeHtml(name)}</h1>
<p data-testid="signed-out">You are signed out of ${escapeHtml(name)}</p>
<p><a href="/login">Sign in with Latchkey</a></p>`,
      ),
      { 'set-cookie': clearSessionCookie },
    );
  }

  async function login(req, res) {
    const codeVerifier = client.randomPKCECodeVerifier();
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
    const state = client.randomState();
    const nonce = client.randomNonce();
    pending.set(state, { codeVerifier, nonce, expires: Date.now() + PENDING_TTL_MS });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    res.writeHead(302, {
      location: url.href,
      'cache-control': 'no-store',
      'set-cookie': `${cookieName}=${encodeURIComponent(state)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${PENDING_TTL_MS / 1000}`,
    });
    res.end();
  }

  const server = http.createServer(async (req, res) => {
    try {
      const { pathname } = new URL(req.url, callbackBase);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' });
        return res.end();
      }
      if (pathname === '/') {
        return send(
          res,
          200,
          page(name, `<h1>${escapeHtml(name)}</h1>\n<p><a href="/login">Sign in with Latchkey</a></p>`),
        );
      }
      if (pathname === '/login') return await login(req, res);
      if (pathname === '/callback') return await callback(req, res);
      if (pathname === '/logout') return logout(req, res);
      if (pathname === '/logged-out') return loggedOut(req, res);
      if (pathname === '/favicon.ico') {
        res.writeHead(204);
        return res.end();
      }
      send(res, 404, page('Not found', '<h1>Not found</h1>'));
    } catch (e) {
      if (!res.headersSent) send(res, 500, page('Error', `<h1>Error</h1><p>${escapeHtml(e.stack || e)}</p>`));
      else res.destroy();
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  return {
    port,
    url: `${callbackBase.protocol}//${callbackBase.host}`,
    clientId,
    postLogoutRedirectUri: loggedOutUri,
    /** Test-only: accept `state` once at /logged-out (see the top of this file). */
    expectLogout(state) {
      pendingLogouts.set(state, Date.now() + PENDING_TTL_MS);
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

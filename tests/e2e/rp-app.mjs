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
//                  ID token's claims and userinfo's email; or, with status 400,
//                  "Sign-in failed: <error>"
import http from 'node:http';
import * as client from 'openid-client';

const SCOPE = 'openid profile email';
// How long a started sign-in is remembered.
const PENDING_TTL_MS = 10 * 60_000;
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
 * PKCE only. Resolves to { url, port, close() }.
 */
export async function startRelyingApp({ port, issuer, clientId, clientSecret, redirectUri, name = 'Demo Notes' }) {
  const isPublic = !clientSecret;
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    isPublic ? undefined : clientSecret,
    isPublic ? client.None() : undefined,
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
  );
  const callbackBase = new URL(redirectUri);
  // Cookies on localhost are shared by every port: one name per app.
  const cookieName = `demo_rp_${port}_state`;
  /** state → { codeVerifier, nonce, expires } */
  const pending = new Map();

  const send = (res, status, html, headers = {}) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(html);
  };
  const clearCookie = `${cookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
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
    const now = Date.now();
    for (const [s, p] of pending) if (p.expires < now) pending.delete(s);
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
<p><a href="/login">Sign in with Latchkey</a></p>`,
      ),
      { 'set-cookie': clearCookie },
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
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

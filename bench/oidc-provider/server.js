// panva/oidc-provider 9 (OpenID Certified), configured to do what Latchkey
// does in bench/run.sh, so the two can be compared request for request:
//
// - RS256 (RSA-2048) and ES256 (P-256) signing keys, from setup.js;
// - a confidential first-party web client: authorization code + PKCE (S256),
//   refresh tokens rotated on every use (Latchkey rotates too), no consent
//   page (like a Latchkey client registered with --first-party). OpenID
//   Connect lets offline_access through only with prompt=consent, which
//   oidc-provider enforces, so the driver sends prompt=consent here and the
//   interaction below grants it without a page;
// - two confidential client_credentials clients whose access tokens are JWTs
//   signed RS256 and ES256 (through resource indicators: a default resource
//   whose tokens are `accessTokenFormat: 'jwt'`);
// - introspection and revocation, client_secret_basic at every endpoint;
// - one user (findAccount) who signs in with email and password on a small
//   interaction page, the password checked with bcrypt (native, on libuv's
//   thread pool) at the cost setup.js hashed it with;
// - lifetimes as Latchkey's defaults: access and ID tokens 10 min, codes
//   1 min, refresh tokens 30 days.
//
// Storage is oidc-provider's built-in in-memory adapter and it is a single
// Node.js process (its state is per process, so it cannot be clustered
// without a shared adapter). See docs/benchmarks.md for what that means for
// the comparison.
//
//   OP_PORT=18081 OP_SETUP=op.json BENCH_REDIRECT_URI=http://localhost/cb node server.js

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

import bcrypt from 'bcrypt';
import Provider, { errors } from 'oidc-provider';

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const PORT = Number(need('OP_PORT'));
const ISSUER = `http://localhost:${PORT}`;
const REDIRECT_URI = process.env.BENCH_REDIRECT_URI || 'http://localhost/cb';
const setup = JSON.parse(readFileSync(need('OP_SETUP'), 'utf8'));
const { user } = setup;

// The resource every client_credentials token is for (Latchkey's are for
// its own issuer; oidc-provider makes JWT access tokens only for a resource).
const API = 'urn:latchkey-bench:api';

const findAccount = async (_ctx, sub) => {
  if (sub !== user.id) return undefined;
  return {
    accountId: sub,
    claims: async () => ({
      sub,
      email: user.email,
      email_verified: true,
      name: user.name,
      updated_at: 0,
    }),
  };
};

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: setup.clients.web.client_id,
      client_secret: setup.clients.web.client_secret,
      client_name: 'web',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: setup.clients.cc_rs256.client_id,
      client_secret: setup.clients.cc_rs256.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: setup.clients.cc_es256.client_id,
      client_secret: setup.clients.cc_es256.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // Like Latchkey's --signing-alg: this client's tokens are ES256.
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: setup.jwks,
  cookies: { keys: setup.cookieKeys },
  findAccount,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'updated_at'],
  },
  features: {
    devInteractions: { enabled: false }, // our own page below checks passwords
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter needed: client_credentials tokens are for API.
      defaultResource: (ctx) => (ctx.oidc.params.grant_type === 'client_credentials' ? API : undefined),
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx, resource, client) => {
        if (resource !== API) throw new errors.InvalidTarget();
        return {
          scope: 'api',
          audience: API,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: client.idTokenSignedResponseAlg || 'RS256' } },
        };
      },
    },
  },
  // Latchkey rotates a refresh token on every use; so does this.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 600,
    RefreshToken: 30 * 24 * 3600,
    Interaction: 30 * 60,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

const page = (uid, message = '') => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in</h1>${message ? `<p role="alert">${message}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Email <input type="email" name="email" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`;

const readForm = (req) =>
  new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 65536) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });

// The grant a first-party client gets without a consent page: everything it
// asked for (openid profile email offline_access).
async function grantAll(details, accountId) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  return grant.save();
}

// The sign-in page. interactionDetails() checks the interaction cookie
// against the uid in the path, which is what ties the form to the browser
// that started the request (oidc-provider's equivalent of a CSRF token).
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const send = (status, html) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  if (req.method === 'GET') {
    // Signed in already (a later authorization of the same browser): only
    // the consent prompt is left, answered at once.
    if (details.prompt.name === 'consent') {
      const grantId = await grantAll(details, details.session.accountId);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return send(200, page(details.uid));
  }
  if (req.method !== 'POST' || !req.url.endsWith('/login')) return send(405, 'method not allowed');
  const form = await readForm(req);
  const email = (form.get('email') || '').trim().toLowerCase();
  const ok = email === user.email.toLowerCase() && (await bcrypt.compare(form.get('password') || '', user.passwordHash));
  if (!ok) return send(200, page(details.uid, 'Wrong email or password.'));
  const grantId = await grantAll(details, user.id);
  return provider.interactionFinished(
    req,
    res,
    { login: { accountId: user.id, amr: ['pwd'], acr: '1fa' }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const handle = provider.callback();
const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`${err.name}: ${err.message}`);
    });
  } else {
    handle(req, res);
  }
});
server.keepAliveTimeout = 60_000;
server.listen(PORT, '127.0.0.1', () => {
  console.log(`oidc-provider ${ISSUER} listening on 127.0.0.1:${PORT}`);
});

// Nothing to flush: everything is in memory.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

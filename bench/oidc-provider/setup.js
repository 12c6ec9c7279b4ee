// Makes everything the comparison oidc-provider needs before it starts, as
// `latchkey client create` / `user create` do for Latchkey before `serve`:
// the signing keys (RSA-2048 for RS256, P-256 for ES256), three clients with
// random secrets, and one user whose password is hashed with bcrypt at the
// same cost as Latchkey's. Prints it all as JSON (bench/run.sh keeps it in
// its temporary directory and gives it to server.js).
//
//   BENCH_USER_EMAIL=… BENCH_USER_PASSWORD=… BCRYPT_COST=12 node setup.js > op.json

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';

import bcrypt from 'bcrypt';

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const secret = () => randomBytes(32).toString('base64url');
const id = () => randomBytes(16).toString('hex');
const jwk = (type, options) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  use: 'sig',
});

const out = {
  jwks: {
    keys: [
      { ...jwk('rsa', { modulusLength: 2048 }), alg: 'RS256' },
      { ...jwk('ec', { namedCurve: 'P-256' }), alg: 'ES256' },
    ],
  },
  cookieKeys: [secret()],
  clients: {
    web: { client_id: id(), client_secret: secret() },
    cc_rs256: { client_id: id(), client_secret: secret() },
    cc_es256: { client_id: id(), client_secret: secret() },
  },
  user: {
    id: randomUUID(),
    email: need('BENCH_USER_EMAIL'),
    name: 'Bench User',
    passwordHash: await bcrypt.hash(need('BENCH_USER_PASSWORD'), Number(process.env.BCRYPT_COST || 12)),
  },
};

process.stdout.write(`${JSON.stringify(out)}\n`);

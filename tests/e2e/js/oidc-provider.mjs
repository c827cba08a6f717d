// A real OpenID provider for the test suite: panva's certified `oidc-provider` (npm), one confidential
// client, test accounts with a `groups` claim. Started and stopped by tests/accounts/oidc_provider.py.
//
//   node oidc-provider.mjs   with  PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_URI,
//                                  KEY_ID (the signing key's kid: a restart with a new one rotates the key)
//
// Test-only control routes (the suite's, not the protocol's):
//   POST /_test/accounts  {"id": ..., "claims": {...}}  add or replace an account
//   POST /_test/mangle    {"idToken": MODE}  the next token response's ID token is altered, once:
//     expired (re-signed with exp an hour ago), audience (re-signed for another client), nonce
//     (re-signed with another nonce), issuer (re-signed as another issuer), tampered (claims changed,
//     signature kept), none (alg "none", no signature), rogue-key (signed with a key not in the JWKS).
//   Re-signing uses the provider's own current key, so only the altered claim can make the portal refuse.
import { randomBytes } from 'node:crypto';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const env = (name, fallback) => process.env[name] ?? fallback;
const port = Number(env('PORT', '0'));
const issuer = `http://127.0.0.1:${port}`;
const clientId = env('CLIENT_ID', 'plinth');
const keyId = env('KEY_ID', 'key-1');

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: keyId, alg: 'RS256', use: 'sig' };
const { privateKey: rogueKey } = await jose.generateKeyPair('RS256', { extractable: true });

const accounts = new Map([
  ['ada', { preferred_username: 'ada', email: 'ada@example.com', email_verified: true,
    given_name: 'Ada', family_name: 'Lovelace', groups: ['plinth-fraud-ml', 'plinth-risk-reviewers', 'staff'] }],
]);

let mangle = null;

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: env('CLIENT_SECRET', 'secret'),
    redirect_uris: [env('REDIRECT_URI')],
    post_logout_redirect_uris: [env('POST_LOGOUT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Claims go into the ID token, as enterprise providers are configured to do for groups.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  features: {
    devInteractions: { enabled: true }, // the provider's own login form: any password, account by name
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const claims = accounts.get(id);
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  // A first-party client: consent is implied, so the flow is login → back to the portal.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'given_name', 'family_name', 'preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

async function readJson(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

async function resign(payload, key = privateKey, kid = keyId) {
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
    .sign(key);
}

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

async function alter(idToken, mode) {
  const [header, body, signature] = idToken.split('.');
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'expired': return resign({ ...claims, iat: now - 7200, exp: now - 3600 });
    case 'audience': return resign({ ...claims, aud: 'another-application', azp: claims.aud });
    case 'nonce': return resign({ ...claims, nonce: randomBytes(16).toString('hex') });
    case 'issuer': return resign({ ...claims, iss: 'http://127.0.0.1:1/elsewhere' });
    case 'rogue-key': return resign(claims, rogueKey, 'rogue');
    case 'tampered': return `${header}.${b64({ ...claims, groups: [...(claims.groups || []), 'plinth-admins'] })}.${signature}`;
    case 'none': return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    default: throw new Error(`unknown mangle mode ${mode}`);
  }
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/accounts' && ctx.method === 'POST') {
    const { id, claims } = await readJson(ctx);
    accounts.set(id, claims);
    ctx.body = { ok: true };
    return;
  }
  if (ctx.path === '/_test/mangle' && ctx.method === 'POST') {
    mangle = (await readJson(ctx)).idToken || null;
    ctx.body = { ok: true, mangle };
    return;
  }
  await next();
  if (mangle && ctx.oidc?.route === 'token' && ctx.body?.id_token) {
    const mode = mangle;
    mangle = null;
    ctx.body = { ...ctx.body, id_token: await alter(ctx.body.id_token, mode) };
  }
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider listening on ${issuer} (kid ${keyId})\n`);
});

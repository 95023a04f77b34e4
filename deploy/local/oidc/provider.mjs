// GridLink's local OpenID Connect provider: node-oidc-provider (a certified OpenID Provider library)
// with the demo county's people (people.json), for `make up` and the tests. A real county uses its
// own provider; the services only need its issuer URL and audience (GRIDLINK_AUTH_OIDC_*).
//
// What it serves: discovery (/.well-known/openid-configuration), JWKS, the authorization-code flow
// with PKCE for the console (a confidential client), the token endpoint, userinfo and logout; its
// own login form (username and password, in Chinese). Access tokens for the GridLink services are
// JWTs (ES256) for the resource `GRIDLINK_AUTH_OIDC_AUDIENCE`, carrying the person's role,
// jurisdiction, department and name; ID tokens are RS256.
//
// Configuration comes from the environment (deploy/local/env.sh sets it for make up; the tests set
// their own): see `setting` calls below. Signing keys are generated once and kept in
// GRIDLINK_OIDC_KEYS_FILE, so a restart keeps the sessions' tokens valid.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const setting = (name, fallback) => process.env[name] || fallback;

const port = Number(setting('GRIDLINK_OIDC_PORT', '18091'));
const issuer = setting('GRIDLINK_AUTH_OIDC_ISSUER', `http://127.0.0.1:${port}`);
const audience = setting('GRIDLINK_AUTH_OIDC_AUDIENCE', 'urn:gridlink:services');
const accessTokenTtl = Number(setting('GRIDLINK_OIDC_ACCESS_TOKEN_TTL_S', String(8 * 3600)));
const clientId = setting('GRIDLINK_CONSOLE_OIDC_CLIENT_ID', 'gridlink-console');
const clientSecret = setting('GRIDLINK_CONSOLE_OIDC_CLIENT_SECRET', 'local-development-only');
const consoleUrls = setting('GRIDLINK_OIDC_CONSOLE_URLS', 'http://127.0.0.1:8006').split(',').map((u) => u.replace(/\/$/, ''));
const keysFile = setting('GRIDLINK_OIDC_KEYS_FILE', join(here, '.keys.json'));
const people = JSON.parse(readFileSync(setting('GRIDLINK_OIDC_PEOPLE', join(here, 'people.json')), 'utf8')).people;

// node_modules is installed once per user under ~/.cache/gridlink (infra.sh), not in the clone.
const modules = setting('GRIDLINK_OIDC_MODULES', join(here, 'node_modules'));
const resolve = createRequire(join(modules, 'package.json')).resolve;
const { default: Provider, errors } = await import(pathToFileURL(resolve('oidc-provider')).href);

function signingKeys() {
  if (existsSync(keysFile)) return JSON.parse(readFileSync(keysFile, 'utf8'));
  const key = (type, options, alg) => ({
    ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
    kid: randomBytes(8).toString('hex'),
    alg,
    use: 'sig',
  });
  const keys = {
    keys: [key('rsa', { modulusLength: 2048 }, 'RS256'), key('ec', { namedCurve: 'P-256' }, 'ES256')],
    cookies: [randomBytes(32).toString('hex')],
  };
  writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

const byUsername = new Map(people.map((p) => [p.username, p]));
const bySubject = new Map(people.map((p) => [p.sub, p]));

// The claims the GridLink services read (shared/auth.py): role, jurisdiction, department, name.
function gridlinkClaims(person) {
  const claims = { name: person.name, role: person.role, jurisdiction: person.jurisdiction };
  if (person.department) claims.department = person.department;
  return claims;
}

const { keys, cookies } = signingKeys();
const provider = new Provider(issuer, {
  jwks: { keys },
  cookies: { keys: cookies },
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      client_name: 'GridLink 工作台',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: consoleUrls.map((u) => `${u}/auth/callback`),
      post_logout_redirect_uris: consoleUrls.map((u) => `${u}/login`),
    },
  ],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'gridlink'],
  claims: { openid: ['sub'], profile: ['name'], gridlink: ['role', 'jurisdiction', 'department'] },
  async findAccount(ctx, sub) {
    const person = bySubject.get(sub);
    if (!person) return undefined;
    return { accountId: sub, async claims() { return { sub, ...gridlinkClaims(person) }; } };
  },
  async extraTokenClaims(ctx, token) {
    const person = token.kind === 'AccessToken' && bySubject.get(token.accountId);
    return person ? gridlinkClaims(person) : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true, logoutSource },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => audience,
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, indicator) {
        if (indicator !== audience) throw new errors.InvalidTarget();
        return {
          scope: 'gridlink',
          audience,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  ttl: { Session: 12 * 3600, Interaction: 3600, AuthorizationCode: 60, IdToken: 3600 },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('登录出错', `<p>${escape(out.error_description || out.error)}</p><p>请回到工作台重新登录。</p>`);
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;background:#f3f5f7;margin:0}main{max-width:22rem;margin:4rem auto;background:#fff;padding:1.5rem;border-radius:6px;box-shadow:0 1px 3px #0003}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}button{margin-top:1rem;width:100%;padding:.6rem;font-size:1rem;background:#1f5fa8;color:#fff;border:0;border-radius:4px}.error{color:#b00020}</style>
</head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

async function logoutSource(ctx, form) {
  // The console asked to log out: no question to answer, the form submits itself.
  ctx.body = page('正在退出', `${form}<p>正在退出统一身份认证…</p>
<button type="submit" form="op.logoutForm" name="logout" value="yes">退出登录</button>
<script>document.forms['op.logoutForm'].requestSubmit ? document.forms['op.logoutForm'].requestSubmit(document.querySelector('button[name=logout]')) : document.forms['op.logoutForm'].submit()</script>`);
}

function loginForm(uid, error = '', username = '') {
  return page('网格通 统一身份认证', `<form method="post" action="/interaction/${escape(uid)}" autocomplete="off">
${error ? `<p class="error">${escape(error)}</p>` : ''}
<label for="username">用户名</label><input id="username" name="username" value="${escape(username)}" required autofocus>
<label for="password">密码</label><input id="password" name="password" type="password" required>
<button id="submit" type="submit">登录</button></form>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

// The login (and, for the first-party console, automatic consent) steps of an authorization request.
async function interaction(req, res, uid) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    send(res, 400, page('登录已超时', '<p>登录页面已过期，请回到工作台重新登录。</p>'));
    return;
  }
  const { prompt, params, session, grantId } = details;
  if (prompt.name === 'consent') {
    // The console is GridLink's own client: staff are not asked to consent to it.
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    return;
  }
  if (req.method !== 'POST') {
    send(res, 200, loginForm(uid));
    return;
  }
  const form = await readForm(req);
  const person = byUsername.get(form.get('username') || '');
  if (!person || person.password !== form.get('password')) {
    send(res, 401, loginForm(uid, '用户名或密码不正确，请重新输入。', form.get('username') || ''));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: person.sub } }, { mergeWithLastSubmission: false });
}

const handle = provider.callback();
const server = createServer((req, res) => {
  const match = /^\/interaction\/([\w-]+)$/.exec(new URL(req.url, issuer).pathname);
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok","service":"oidc"}');
  } else if (match) {
    interaction(req, res, match[1]).catch((error) => {
      console.error(error);
      send(res, 500, page('登录出错', '<p>登录服务出错，请稍后重试。</p>'));
    });
  } else {
    handle(req, res);
  }
});
server.listen(port, '127.0.0.1', () => console.log(`oidc provider ${issuer} on 127.0.0.1:${port}, ${people.length} people`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));

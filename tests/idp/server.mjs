#!/usr/bin/env node
// A local OAuth 2.0 / OpenID Connect provider configured like a Flyte deployment, for the
// flyte-auth end-to-end tests (and for demos and debugging by hand).
//
// It wraps `oidc-provider` (the certified Node.js OpenID Provider) and adds, on the same
// origin, what flyteadmin serves (`/.well-known/oauth-authorization-server`,
// `/config/v1/flyte_client`; in Flyte 2 mode, `--flyte-version 2`, the ConnectRPC
// `flyteidl2.auth.AuthMetadataService` instead) plus a few test endpoints under `/test/` (request counters,
// fault injection, runtime changes of the flyte_client document).
//
// Options: each is an environment variable, or the same name as a command-line flag in
// kebab case (`--access-token-ttl 5` or `--access-token-ttl=5` sets ACCESS_TOKEN_TTL). See
// tests/README.md for the list. Once listening, the server prints one JSON line on stdout:
//   {"ready":true,"issuer":"http://127.0.0.1:PORT","port":PORT}
// and logs one line per request (method, path, status; never queries or bodies) on stderr.

import crypto from 'node:crypto';
import http from 'node:http';
import process from 'node:process';


// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

const OPTIONS = {
  HOST: '127.0.0.1',
  PORT: '0',
  ACCESS_TOKEN_TTL: '3600',
  REFRESH_TOKEN_TTL: String(14 * 24 * 60 * 60),
  DEVICE_CODE_TTL: '600',
  DEVICE_POLL_INTERVAL: '',
  FLYTE_CLIENT_STYLE: 'snake',
  FLYTE_CLIENT_ID: 'flytectl',
  FLYTE_REDIRECT_URI: 'http://localhost:53593/callback',
  FLYTE_SCOPES: 'all',
  FLYTE_AUDIENCE: '',
  FLYTE_AUTHORIZATION_METADATA_KEY: '',
  // `1`: a flyteadmin (Flyte 1) server. `2`: a Flyte 2 backend: no `/config/v1/flyte_client`,
  // the ConnectRPC methods of `flyteidl2.auth.AuthMetadataService` instead.
  FLYTE_VERSION: '1',
  // `0`: no `/.well-known/oauth-authorization-server` either (Flyte 2 mode only).
  WELL_KNOWN: '1',
  EXIT_ON_STDIN_CLOSE: '0',
  LOG_REQUESTS: '1',
};

function usage() {
  const lines = Object.entries(OPTIONS).map(
    ([name, value]) => `  --${name.toLowerCase().replaceAll('_', '-')} (env ${name}, default ${JSON.stringify(value)})`,
  );
  return `usage: node server.mjs [options]\noptions:\n${lines.join('\n')}\n`;
}

function readOptions(argv, env) {
  const options = {};
  for (const [name, fallback] of Object.entries(OPTIONS)) {
    options[name] = env[name] ?? fallback;
  }
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(usage());
      process.exit(0);
    }
    if (!arg.startsWith('--')) {
      throw new Error(`unexpected argument ${JSON.stringify(arg)}\n${usage()}`);
    }
    let [flag, value] = arg.slice(2).split(/=(.*)/s);
    const name = flag.toUpperCase().replaceAll('-', '_');
    if (!(name in OPTIONS)) {
      throw new Error(`unknown option --${flag}\n${usage()}`);
    }
    if (value === undefined) {
      i += 1;
      if (i >= argv.length) {
        throw new Error(`option --${flag} needs a value`);
      }
      value = argv[i];
    }
    options[name] = value;
  }
  return options;
}

function seconds(options, name, { allowEmpty = false } = {}) {
  const raw = options[name];
  if (allowEmpty && raw === '') {
    return undefined;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a whole number of seconds, got ${JSON.stringify(raw)}`);
  }
  return value;
}

let options;
let accessTokenTtl;
let refreshTokenTtl;
let deviceCodeTtl;
let devicePollInterval;
try {
  options = readOptions(process.argv.slice(2), process.env);
  accessTokenTtl = seconds(options, 'ACCESS_TOKEN_TTL');
  refreshTokenTtl = seconds(options, 'REFRESH_TOKEN_TTL');
  deviceCodeTtl = seconds(options, 'DEVICE_CODE_TTL');
  devicePollInterval = seconds(options, 'DEVICE_POLL_INTERVAL', { allowEmpty: true });
  if (!['1', '2'].includes(options.FLYTE_VERSION)) {
    throw new Error(`FLYTE_VERSION must be "1" or "2", got ${JSON.stringify(options.FLYTE_VERSION)}`);
  }
  if (!['0', '1'].includes(options.WELL_KNOWN)) {
    throw new Error(`WELL_KNOWN must be "0" or "1", got ${JSON.stringify(options.WELL_KNOWN)}`);
  }
  if (!['snake', 'camel'].includes(options.FLYTE_CLIENT_STYLE)) {
    throw new Error(`FLYTE_CLIENT_STYLE must be "snake" or "camel", got ${JSON.stringify(options.FLYTE_CLIENT_STYLE)}`);
  }
} catch (err) {
  process.stderr.write(`server.mjs: ${err.message}\n`);
  process.exit(2);
}

// Imported only now, so that --help and option errors work before `npm ci`.
let Provider;
let errors;
try {
  ({ default: Provider, errors } = await import('oidc-provider'));
} catch (err) {
  process.stderr.write(`server.mjs: cannot load oidc-provider (${err.message}); run \`npm ci --prefix tests/idp\` from the workspace root\n`);
  process.exit(2);
}
const logRequests = options.LOG_REQUESTS !== '0';

function log(line) {
  process.stderr.write(`[idp] ${line}\n`);
}

// ---------------------------------------------------------------------------------------
// Clients, as a Flyte deployment registers them
// ---------------------------------------------------------------------------------------

// Confidential clients. oidc-provider only accepts printable ASCII in registered secrets
// (RFC 6749 Appendix A.2); secrets with other characters are registered with a placeholder
// and compared here instead (see `compareClientSecret` below), so that clients can be tested
// on how they form-encode any UTF-8 secret (RFC 6749 section 2.3.1).
const CONFIDENTIAL_CLIENTS = [
  { client_id: 'flyte-service', secret: 's3cr:t/+%&= ~', method: 'client_secret_basic' },
  { client_id: 'flyte-service-post', secret: 'p0st s3cr:t/+%2B&=é', method: 'client_secret_post' },
  { client_id: 'flyte:propeller', secret: 'propeller secret+%', method: 'client_secret_basic' },
  // No `:` in the secret: it fits a Flyte 2 API key.
  { client_id: 'flyte-api-key', secret: 'api-key s3cret/+', method: 'client_secret_basic' },
];

const PUBLIC_CLIENT = {
  client_id: 'flytectl',
  client_name: 'flytectl',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
  // Native clients may vary the port of loopback redirect URIs (RFC 8252 section 7.3).
  redirect_uris: [
    'http://localhost:53593/callback',
    'http://127.0.0.1:53593/callback',
    'http://[::1]:53593/callback',
  ],
};

const REAL_SECRETS = new Map();
const clients = [PUBLIC_CLIENT];
for (const { client_id: clientId, secret, method } of CONFIDENTIAL_CLIENTS) {
  // eslint-disable-next-line no-control-regex
  const printable = /^[\x20-\x7E]+$/.test(secret);
  if (!printable) {
    REAL_SECRETS.set(clientId, secret);
  }
  clients.push({
    client_id: clientId,
    client_secret: printable ? secret : `placeholder-${crypto.randomUUID()}`,
    token_endpoint_auth_method: method,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  });
}

function timingSafeStringEquals(expected, actual) {
  const a = Buffer.from(String(expected), 'utf8');
  const b = Buffer.from(String(actual ?? ''), 'utf8');
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

// ---------------------------------------------------------------------------------------
// Test state: counters, faults, the flyte_client document
// ---------------------------------------------------------------------------------------

function emptyStats() {
  return {
    token_requests: {},
    device_authorization_requests: 0,
    authorization_requests: 0,
    injected_faults: 0,
    connect_requests: {},
    // Every request but /test/*: method, path, content-type and proxy-authorization (or null).
    requests: [],
  };
}

// The most requests recorded in `stats.requests`; later ones are counted but not recorded.
const MAX_RECORDED_REQUESTS = 2000;

let stats = emptyStats();
// Queue of { endpoint, status, body, content_type, delay_ms, remaining }.
let faults = [];

const flyteClient = {
  client_id: options.FLYTE_CLIENT_ID,
  redirect_uri: options.FLYTE_REDIRECT_URI,
  scopes: options.FLYTE_SCOPES.split(/[\s,]+/).filter(Boolean),
  authorization_metadata_key: options.FLYTE_AUTHORIZATION_METADATA_KEY,
  audience: options.FLYTE_AUDIENCE,
  style: options.FLYTE_CLIENT_STYLE,
};

// ---------------------------------------------------------------------------------------
// Small HTTP helpers
// ---------------------------------------------------------------------------------------

const BODY_LIMIT = 64 * 1024;

function readRawBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function readJson(req) {
  const raw = await readRawBody(req);
  if (raw.length === 0) {
    return {};
  }
  return JSON.parse(raw.toString('utf8'));
}

function sleep(ms) {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

function camelCase(key) {
  return key.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

// ---------------------------------------------------------------------------------------
// Start: listen first (the issuer needs the port), then build the provider
// ---------------------------------------------------------------------------------------

const server = http.createServer();
server.keepAliveTimeout = 5000;

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(options.PORT), options.HOST, resolve);
});

const { port } = server.address();
const hostForUrl = options.HOST.includes(':') ? `[${options.HOST}]` : options.HOST;
const issuer = `http://${hostForUrl}:${port}`;
// The Flyte API, as a resource server: access tokens are issued for it, with its scopes.
const resource = flyteClient.audience || `${issuer}/`;
if (!flyteClient.audience) {
  flyteClient.audience = resource;
}
const RESOURCE_SCOPES = ['all', 'offline'];

const configuration = {
  clients,
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, name: sub, email: `${sub}@example.com` };
      },
    };
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      async defaultResource(ctx, client, oneOf) {
        return oneOf ? oneOf[0] : resource;
      },
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator === resource) {
          return {
            scope: RESOURCE_SCOPES.join(' '),
            audience: resource,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'opaque',
          };
        }
        throw new errors.InvalidTarget();
      },
      async useGrantedResource() {
        return true;
      },
    },
  },
  // Flyte's clients expect a refresh token from every login of a client that may refresh,
  // whether or not offline_access was asked for.
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: true,
  async expiresWithSession() {
    return false;
  },
  ttl: {
    AccessToken: accessTokenTtl,
    ClientCredentials: accessTokenTtl,
    IdToken: 3600,
    DeviceCode: deviceCodeTtl,
    RefreshToken: refreshTokenTtl,
  },
};

const provider = new Provider(issuer, configuration);

// Compare secrets that could not be registered as they are (see CONFIDENTIAL_CLIENTS).
const originalCompare = provider.Client.prototype.compareClientSecret;
provider.Client.prototype.compareClientSecret = function compareClientSecret(actual) {
  const real = REAL_SECRETS.get(this.clientId);
  if (real !== undefined) {
    return timingSafeStringEquals(real, actual);
  }
  return originalCompare.call(this, actual);
};

// RFC 8628 lets the server say how often to poll; oidc-provider leaves `interval` out.
provider.use(async (ctx, next) => {
  await next();
  if (
    devicePollInterval !== undefined
    && ctx.method === 'POST'
    && ctx.path === '/device/auth'
    && ctx.status === 200
    && ctx.body
    && typeof ctx.body === 'object'
  ) {
    ctx.body.interval = devicePollInterval;
  }
});

const providerCallback = provider.callback();

let authorizationServerMetadata;
async function oauthAuthorizationServerMetadata() {
  if (!authorizationServerMetadata) {
    const response = await fetch(`${issuer}/.well-known/openid-configuration`, {
      signal: AbortSignal.timeout(10000),
      headers: { 'x-idp-internal': '1' },
    });
    const metadata = await response.json();
    const scopes = new Set([...(metadata.scopes_supported ?? []), ...RESOURCE_SCOPES]);
    metadata.scopes_supported = [...scopes];
    authorizationServerMetadata = metadata;
  }
  return authorizationServerMetadata;
}

function flyteClientDocumentSnake() {
  return {
    client_id: flyteClient.client_id,
    redirect_uri: flyteClient.redirect_uri,
    scopes: flyteClient.scopes,
    authorization_metadata_key: flyteClient.authorization_metadata_key,
    service_http_endpoint: `${issuer}`,
    audience: flyteClient.audience,
  };
}

function flyteClientDocument() {
  const doc = flyteClientDocumentSnake();
  if (flyteClient.style === 'camel') {
    return Object.fromEntries(Object.entries(doc).map(([k, v]) => [camelCase(k), v]));
  }
  return doc;
}

// ---------------------------------------------------------------------------------------
// Flyte 2: flyteidl2.auth.AuthMetadataService over the Connect protocol (unary), with the
// JSON codec (protojson names) and the binary protobuf codec, as a Connect server answers.
// ---------------------------------------------------------------------------------------

const CONNECT_SERVICE = '/flyteidl2.auth.AuthMetadataService/';

// Field numbers of flyteidl2/auth/auth_service.proto.
const OAUTH2_METADATA_FIELDS = [
  ['issuer', 1], ['authorization_endpoint', 2], ['token_endpoint', 3],
  ['response_types_supported', 4], ['scopes_supported', 5],
  ['token_endpoint_auth_methods_supported', 6], ['jwks_uri', 7],
  ['code_challenge_methods_supported', 8], ['grant_types_supported', 9],
  ['device_authorization_endpoint', 10],
];
const PUBLIC_CLIENT_CONFIG_FIELDS = [
  ['client_id', 1], ['redirect_uri', 2], ['scopes', 3], ['authorization_metadata_key', 4],
  ['service_http_endpoint', 5], ['audience', 6], ['dataplane_domain', 7],
];

function varint(n) {
  const bytes = [];
  let value = n;
  while (value > 0x7f) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

// A message of string and repeated string fields, in protobuf's binary encoding (proto3:
// empty strings are not written).
function encodeProto(fields, doc) {
  const parts = [];
  for (const [name, number] of fields) {
    const value = doc[name];
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item !== 'string' || item === '') {
        continue;
      }
      const bytes = Buffer.from(item, 'utf8');
      parts.push(varint((number << 3) | 2), varint(bytes.length), bytes);
    }
  }
  return Buffer.concat(parts);
}

// protojson: lowerCamelCase names, default values left out.
function encodeJson(fields, doc) {
  const out = {};
  for (const [name] of fields) {
    const value = doc[name];
    if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) {
      continue;
    }
    out[camelCase(name)] = value;
  }
  return JSON.stringify(out);
}

function connectError(res, status, code, message) {
  const body = JSON.stringify({ code, message });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

// One unary call: POST with the codec in content-type, or GET (`idempotency_level =
// NO_SIDE_EFFECTS`) with `?encoding=json|proto&message=...`.
async function connectCall(req, res, path) {
  const method = path.slice(CONNECT_SERVICE.length);
  let codec;
  if (req.method === 'POST') {
    await readRawBody(req);
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    codec = { 'application/json': 'json', 'application/proto': 'proto' }[type];
    if (!codec) {
      connectError(res, 415, 'unknown', `unsupported content-type ${JSON.stringify(type)}`);
      return;
    }
  } else if (req.method === 'GET') {
    codec = new URL(req.url, issuer).searchParams.get('encoding');
    if (!['json', 'proto'].includes(codec)) {
      connectError(res, 415, 'unknown', 'GET needs encoding=json or encoding=proto');
      return;
    }
  } else {
    connectError(res, 405, 'unknown', 'use POST or GET');
    return;
  }
  stats.connect_requests[method] = (stats.connect_requests[method] ?? 0) + 1;
  let fields;
  let doc;
  if (method === 'GetPublicClientConfig') {
    fields = PUBLIC_CLIENT_CONFIG_FIELDS;
    doc = { ...flyteClientDocumentSnake(), dataplane_domain: '' };
  } else if (method === 'GetOAuth2Metadata') {
    fields = OAUTH2_METADATA_FIELDS;
    doc = await oauthAuthorizationServerMetadata();
  } else {
    connectError(res, 404, 'unimplemented', `method ${method} is not implemented`);
    return;
  }
  const body = codec === 'json' ? Buffer.from(encodeJson(fields, doc)) : encodeProto(fields, doc);
  res.writeHead(200, {
    'content-type': codec === 'json' ? 'application/json' : 'application/proto',
    'content-length': body.length,
  });
  res.end(body);
}

function takeFault(endpoint) {
  const fault = faults.find((f) => f.endpoint === endpoint && f.remaining > 0);
  if (!fault) {
    return undefined;
  }
  fault.remaining -= 1;
  faults = faults.filter((f) => f.remaining > 0);
  stats.injected_faults += 1;
  return fault;
}

async function answerFault(res, fault) {
  if (fault.delay_ms) {
    await sleep(fault.delay_ms);
  }
  const body = fault.body ?? JSON.stringify({
    error: 'temporarily_unavailable',
    error_description: 'fault injected by the test identity provider',
  });
  res.writeHead(fault.status, {
    'content-type': fault.content_type ?? 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

// Counts a request to a form-encoded endpoint and hands the already-read body on to
// oidc-provider (which accepts a pre-read `req.body`).
async function countAndForward(req, res, endpoint, count) {
  const raw = await readRawBody(req);
  count(new URLSearchParams(raw.toString('utf8')));
  const fault = takeFault(endpoint);
  if (fault) {
    await answerFault(res, fault);
    return;
  }
  req.body = raw;
  providerCallback(req, res);
}

async function testEndpoints(req, res, path) {
  if (path === '/test/health' && req.method === 'GET') {
    sendJson(res, 200, { ok: true, issuer });
  } else if (path === '/test/stats' && req.method === 'GET') {
    sendJson(res, 200, stats);
  } else if (path === '/test/stats/reset' && req.method === 'POST') {
    stats = emptyStats();
    sendJson(res, 200, stats);
  } else if (path === '/test/faults' && req.method === 'POST') {
    const fault = await readJson(req);
    const endpoint = fault.endpoint ?? 'token';
    const status = Number(fault.status ?? 503);
    const count = Number(fault.count ?? 1);
    const delay = Number(fault.delay_ms ?? 0);
    if (!['token', 'device_authorization'].includes(endpoint)
      || !Number.isInteger(status) || status < 100 || status > 599
      || !Number.isInteger(count) || count < 1
      || !Number.isInteger(delay) || delay < 0 || delay > 120000) {
      sendJson(res, 400, { error: 'invalid fault; want {endpoint: "token"|"device_authorization", status: 100..599, count >= 1, delay_ms: 0..120000, body?, content_type?}' });
      return;
    }
    faults.push({
      endpoint,
      status,
      remaining: count,
      delay_ms: delay,
      body: fault.body === undefined ? undefined : String(fault.body),
      content_type: fault.content_type,
    });
    sendJson(res, 200, { queued: faults.length });
  } else if (path === '/test/faults' && req.method === 'DELETE') {
    faults = [];
    sendJson(res, 200, { queued: 0 });
  } else if (path === '/test/flyte-client' && req.method === 'PUT') {
    const update = await readJson(req);
    for (const key of ['client_id', 'redirect_uri', 'authorization_metadata_key', 'audience']) {
      if (update[key] !== undefined) {
        flyteClient[key] = String(update[key]);
      }
    }
    if (update.scopes !== undefined) {
      flyteClient.scopes = update.scopes.map(String);
    }
    if (update.style !== undefined) {
      if (!['snake', 'camel'].includes(update.style)) {
        sendJson(res, 400, { error: 'style must be "snake" or "camel"' });
        return;
      }
      flyteClient.style = update.style;
    }
    sendJson(res, 200, flyteClientDocument());
  } else {
    sendJson(res, 404, { error: 'not_found' });
  }
}

async function handle(req, res) {
  const path = new URL(req.url, issuer).pathname;
  if (logRequests) {
    res.on('finish', () => log(`${req.method} ${path} -> ${res.statusCode}`));
  }
  const flyte2 = options.FLYTE_VERSION === '2';
  if (!path.startsWith('/test/') && req.headers['x-idp-internal'] !== '1') {
    if (stats.requests.length < MAX_RECORDED_REQUESTS) {
      stats.requests.push({
        method: req.method,
        path,
        content_type: req.headers['content-type'] ?? null,
        proxy_authorization: req.headers['proxy-authorization'] ?? null,
      });
    }
  }
  if (path.startsWith('/test/')) {
    await testEndpoints(req, res, path);
  } else if (path === '/.well-known/oauth-authorization-server' && req.method === 'GET') {
    if (flyte2 && options.WELL_KNOWN === '0') {
      sendJson(res, 404, { error: 'not_found' });
    } else {
      sendJson(res, 200, await oauthAuthorizationServerMetadata());
    }
  } else if (path === '/config/v1/flyte_client' && req.method === 'GET' && !flyte2) {
    sendJson(res, 200, flyteClientDocument());
  } else if (path.startsWith(CONNECT_SERVICE) && flyte2) {
    await connectCall(req, res, path);
  } else if (path === '/token' && req.method === 'POST') {
    await countAndForward(req, res, 'token', (params) => {
      const grant = params.get('grant_type') ?? '(none)';
      stats.token_requests[grant] = (stats.token_requests[grant] ?? 0) + 1;
    });
  } else if (path === '/device/auth' && req.method === 'POST') {
    await countAndForward(req, res, 'device_authorization', () => {
      stats.device_authorization_requests += 1;
    });
  } else {
    if (path === '/auth') {
      stats.authorization_requests += 1;
    }
    providerCallback(req, res);
  }
}

server.on('request', (req, res) => {
  handle(req, res).catch((err) => {
    log(`error while answering ${req.method}: ${err.message}`);
    if (!res.headersSent) {
      sendJson(res, 500, { error: 'server_error', error_description: err.message });
    } else {
      res.destroy();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Lifetime
// ---------------------------------------------------------------------------------------

function shutdown(reason) {
  log(`shutting down (${reason})`);
  process.exit(0);
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (options.EXIT_ON_STDIN_CLOSE === '1') {
  // The parent (a test binary) holds our stdin; when it exits, however it exits, stdin
  // closes and so do we.
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

log(`listening on ${issuer} (access tokens ${accessTokenTtl}s, device codes ${deviceCodeTtl}s)`);
process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);

// Starts s3rver (a real S3-compatible server) on loopback for gpulab's tests.
//
// s3rver 3.7.1 checks the access key id of a SigV4 request but not its
// signature ("Signature version 4 calculation is unimplemented" in its
// lib/middleware/authentication.js). So that a wrong secret, region or
// canonical request fails as it does on AWS, this launcher puts a strict
// SigV4 check (AWS's documented algorithm) in front of s3rver's own
// middleware. Requests without credentials are refused (403 AccessDenied),
// as for a private bucket.
//
// Usage: node launch.js --directory DIR --bucket NAME [--bucket NAME...]
//                       [--port N (0 = any)] [--region R] [--log FILE]
//                       [--key ACCESS_KEY_ID:SECRET...] [--public BUCKET...]
// s3rver's built-in key pair S3RVER:S3RVER always works; --key adds more.
// A --public bucket (also created) answers anonymous GET and HEAD, like a
// public-read bucket served over plain https.
// Prints "LISTENING <port>" on stdout once it accepts connections; every
// request is appended to --log as "METHOD URL STATUS".
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const S3rver = require('s3rver');

// s3rver makes its opaque ListObjectsV2 continuation tokens with DES, which
// OpenSSL 3 only offers through its legacy provider. Where DES is missing,
// use AES for those tokens (only s3rver itself reads them).
try {
  crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
} catch (e) {
  const pad = b => Buffer.concat([Buffer.from(b), Buffer.alloc(8)]);
  for (const name of ['createCipheriv', 'createDecipheriv']) {
    const original = crypto[name];
    crypto[name] = (alg, key, iv, ...rest) =>
      alg === 'des' ? original('aes-128-cbc', pad(key), pad(iv), ...rest) : original(alg, key, iv, ...rest);
  }
}
const AWSAccount = require('s3rver/lib/models/account');

const args = { port: '0', region: 'us-east-1', bucket: [], key: [], public: [] };
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, '');
  const value = process.argv[i + 1];
  if (name === 'bucket' || name === 'key' || name === 'public') args[name].push(value);
  else args[name] = value;
}
if (!args.directory) {
  console.error('launch.js: --directory is required');
  process.exit(2);
}

for (const pair of args.key) {
  const colon = pair.indexOf(':');
  AWSAccount.DUMMY_ACCOUNT.createKeyPair(pair.slice(0, colon), pair.slice(colon + 1));
}
// The secret s3rver keeps for an access key id, or undefined.
const secretOf = id => {
  const account = AWSAccount.registry.get(id);
  return account && account.accessKeys.get(id);
};

const hmac = (key, text) => crypto.createHmac('sha256', key).update(text).digest();
const sha256 = text => crypto.createHash('sha256').update(text).digest('hex');
const encode = s =>
  encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function s3Error(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

// Recomputes the signature of an AWS4-HMAC-SHA256 Authorization header.
async function verifySigV4(ctx, next) {
  const auth = ctx.get('authorization');
  if (!auth) {
    // A URL presigned for GET (here: any X-Amz-Signature) is refused for HEAD,
    // as on S3, whose presigned signature covers the method.
    if ('X-Amz-Signature' in ctx.query && ctx.method !== 'GET') {
      return s3Error(ctx, 403, 'SignatureDoesNotMatch', 'The URL is presigned for GET');
    }
    const readOnly = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (readOnly && args.public.some(b => ctx.path.startsWith(`/${b}/`))) return next();
    return s3Error(ctx, 403, 'AccessDenied', 'Access Denied');
  }
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    auth,
  );
  if (!m) return s3Error(ctx, 400, 'AuthorizationHeaderMalformed', 'Malformed Authorization');
  const [, accessKey, day, region, signedHeaders, signature] = m;
  const secret = secretOf(accessKey);
  if (secret === undefined) {
    return s3Error(ctx, 403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  if (region !== args.region) {
    return s3Error(ctx, 400, 'AuthorizationHeaderMalformed', `the region '${region}' is wrong; expecting '${args.region}'`);
  }
  const date = ctx.get('x-amz-date');
  const names = signedHeaders.split(';');
  if (!date.startsWith(day) || !names.includes('host') || !names.includes('x-amz-date')) {
    return s3Error(ctx, 403, 'SignatureDoesNotMatch', 'host and x-amz-date must be signed');
  }
  const raw = ctx.req.url;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q + 1);
  const canonicalQuery = query
    .split('&')
    .filter(Boolean)
    .map(p => {
      const eq = p.indexOf('=');
      const k = decodeURIComponent(eq < 0 ? p : p.slice(0, eq));
      const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
      return [encode(k), encode(v)];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalPath = path
    .split('/')
    .map(s => encode(decodeURIComponent(s)))
    .join('/');
  const headers = names.map(n => `${n}:${(ctx.get(n) || '').trim().replace(/ +/g, ' ')}\n`).join('');
  const payload = ctx.get('x-amz-content-sha256') || sha256('');
  const canonical = [ctx.method, canonicalPath, canonicalQuery, headers, signedHeaders, payload].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  let key = hmac('AWS4' + secret, day);
  key = hmac(hmac(hmac(key, region), 's3'), 'aws4_request');
  if (hmac(key, toSign).toString('hex') !== signature) {
    return s3Error(ctx, 403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.');
  }
  return next();
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(args.port),
  directory: args.directory,
  silent: true,
  configureBuckets: args.bucket.concat(args.public).map(name => ({ name })),
});
const log = args.log ? fs.openSync(args.log, 'a') : null;
server.middleware.unshift(async (ctx, next) => {
  try {
    await next();
  } finally {
    if (log !== null) fs.writeSync(log, `${ctx.method} ${ctx.req.url} ${ctx.status}\n`);
  }
}, verifySigV4);

server.run((err, { port } = {}) => {
  if (err) {
    console.error('launch.js: s3rver failed to start:', err.message);
    process.exit(1);
  }
  process.stdout.write(`LISTENING ${port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));

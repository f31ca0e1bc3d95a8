// Signing image URLs locally with Node's built-in crypto: no npm dependencies.
// Keep this code on your server: tokens and private keys must never reach a browser.
import { createHash, sign } from 'node:crypto';

// Split "https://host/path?query" into origin and request URI, byte for byte.
// (new URL() would normalise the path and re-encode characters: the signature must
// cover exactly the bytes the client will send.)
export function splitUrl(url) {
  if (url.startsWith('/')) return ['', url];
  const schemeEnd = url.indexOf('://');
  const pathStart = url.indexOf('/', schemeEnd + 3);
  if (schemeEnd < 0 || pathStart < 0) throw new Error('URL must be absolute or start with /');
  return [url.slice(0, pathStart), url.slice(pathStart)];
}

// Scheme md5-token: s = md5_hex(path + querystring + token), appended last.
// `expires` (unix seconds), when given, is part of the signed string.
export function signMd5Token(url, token, { expires } = {}) {
  const [origin, uriWithMark] = splitUrl(url);
  let uri = uriWithMark.endsWith('?') ? uriWithMark.slice(0, -1) : uriWithMark;
  if (expires !== undefined) uri += `${uri.includes('?') ? '&' : '?'}expires=${expires}`;
  const s = createHash('md5').update(uri + token, 'utf8').digest('hex');
  return `${origin}${uri}${uri.includes('?') ? '&' : '?'}s=${s}`;
}

// CloudFront's URL-safe base64: + -> -, = -> _, / -> ~
function cloudFrontBase64(buffer) {
  return buffer.toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');
}

// Scheme cloudfront, canned policy (the same URL botocore's CloudFrontSigner makes).
// Works with RSA and ECDSA P-256 private keys (PEM); SHA-1, as CloudFront expects
// unless `hashAlgorithm: 'SHA256'` is asked for.
export function signCloudFront(url, { keyPairId, privateKeyPem, expires, hashAlgorithm = 'SHA1' }) {
  const policy = JSON.stringify({
    Statement: [{ Resource: url, Condition: { DateLessThan: { 'AWS:EpochTime': expires } } }],
  });
  const digest = hashAlgorithm === 'SHA256' ? 'sha256' : 'sha1';
  const signature = sign(digest, Buffer.from(policy, 'utf8'), privateKeyPem);
  const params = [`Expires=${expires}`, `Signature=${cloudFrontBase64(signature)}`,
    `Key-Pair-Id=${keyPairId}`];
  if (hashAlgorithm === 'SHA256') params.push('Hash-Algorithm=SHA256');
  return `${url}${url.includes('?') ? '&' : '?'}${params.join('&')}`;
}

// Scheme akamai: Akamai EdgeAuth 2.0 tokens, with Node's built-in crypto only.
// https://techdocs.akamai.com/property-mgr/docs/auth-token-2-0-verification
// https://github.com/akamai/EdgeAuth-Token-Node (this writes the same tokens, defaults only:
// sha256, '~' between fields, '!' between ACL globs, no escape_early, no salt).
// token = [st=START~]exp=END[~acl=GLOB!GLOB]~hmac=HEX, HEX = HMAC-SHA256(hex key, the
// token before '~hmac='; for a URL token (no ACL) followed by '~url=<path as sent>').
// Keep this code on your server: the key must never reach a browser.
import { createHmac } from 'node:crypto';

function decodeKey(hexKey) {
  if (!/^(?:[0-9a-f]{2}){16,}$|^(?:[0-9A-F]{2}){16,}$/.test(hexKey)) {
    throw new Error('the key must be hex: an even number (32+) of digits, one letter case');
  }
  return Buffer.from(hexKey, 'hex');
}

// Sign `url` (absolute or path-only, percent-encoded as clients will request it) until
// `expires` (unix seconds), appending `__token__=<token>`. With `acl` (a glob such as
// "/books/*": '*' any run, '?' one character) the token grants every path it covers;
// without, it is bound to this URL's path.
export function signAkamai(url, { hexKey, expires, acl, startTime, tokenName = '__token__' }) {
  const key = decodeKey(hexKey);
  if (!Number.isSafeInteger(expires) || expires <= 0) throw new Error('expires must be unix seconds');
  const parsed = new URL(url, 'http://placeholder.invalid');
  const path = parsed.pathname; // the path as the URL carries it: what the edge hashes
  if (acl !== undefined && !/^[!-~]+$/.test(acl)) throw new Error('an ACL is printable ASCII');
  if (acl !== undefined && /[ #%&\\~!]/.test(acl)) throw new Error('an ACL cannot hold # % & \\ ~ !');
  const fields = [];
  if (startTime !== undefined) fields.push(`st=${startTime}`);
  fields.push(`exp=${expires}`);
  if (acl !== undefined) fields.push(`acl=${acl}`);
  const head = fields.join('~');
  const signedString = acl === undefined ? `${head}~url=${path}` : head;
  const hmac = createHmac('sha256', key).update(signedString, 'utf8').digest('hex');
  const base = url.endsWith('?') ? url.slice(0, -1) : url;
  const separator = base.includes('?') ? '&' : '?';
  return `${base}${separator}${tokenName}=${head}~hmac=${hmac}`;
}

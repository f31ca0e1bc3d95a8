// Scheme gcdn: Google Cloud CDN signed URLs, with Node's built-in crypto only.
// https://cloud.google.com/cdn/docs/using-signed-urls
// Signature = base64url(HMAC-SHA1(key, string)) WITH its '=' padding (as Google's samples
// print it); the key is 16 bytes, given as Google shows it: base64url, 24 characters.
// Keep this code on your server: the key must never reach a browser.
import { createHmac } from 'node:crypto';

// Padded base64url: Node's 'base64url' drops the '=' Google keeps.
function base64url(buffer) {
  return buffer.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function decodeKey(base64Key) {
  const key = /^[A-Za-z0-9_-]{22}==$/.test(base64Key) ? Buffer.from(base64Key, 'base64url') : null;
  if (!key || key.length !== 16 || base64url(key) !== base64Key) {
    throw new Error('the key must be 16 bytes in padded base64url (24 characters)');
  }
  return key;
}

// Sign `url` (absolute: the signature covers scheme and host; percent-encode it first,
// exactly as clients will request it) until `expires` (unix seconds). With `urlPrefix`
// (a full URL without a query, e.g. "https://img.example.com/books/"), the grant covers
// every URL starting with it: URLPrefix=...&Expires=...&KeyName=...&Signature=...
export function signGcdn(url, { keyName, base64Key, expires, urlPrefix }) {
  if (!/^https?:\/\/[^/?#]+\//.test(url)) throw new Error('URL must be absolute: http(s)://host/path');
  if (urlPrefix !== undefined && !url.startsWith(urlPrefix)) throw new Error('URL is not under urlPrefix');
  const key = decodeKey(base64Key);
  const base = url.endsWith('?') ? url.slice(0, -1) : url;
  const separator = base.includes('?') ? '&' : '?';
  let head = `Expires=${expires}&KeyName=${keyName}`;
  if (urlPrefix !== undefined) {
    head = `URLPrefix=${base64url(Buffer.from(urlPrefix, 'utf8'))}&${head}`;
  }
  // The plain form signs the whole URL up to KeyName; the prefix form signs its policy.
  const signedString = urlPrefix === undefined ? `${base}${separator}${head}` : head;
  const signature = base64url(createHmac('sha1', key).update(signedString, 'utf8').digest());
  return `${base}${separator}${head}&Signature=${signature}`;
}

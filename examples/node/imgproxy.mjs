// Scheme imgproxy: imgproxy's signed URLs, with Node's built-in crypto (no npm dependencies).
//   url = "/" + base64url_nopad(HMAC-SHA256(key, salt + "/" + rest)[:signatureSize]) + "/" + rest
// `key` and `salt` are hex, as imgproxy's IMGPROXY_KEY and IMGPROXY_SALT. `rest` is
// imgproxy's options and source exactly as they will be sent, e.g.
// "rs:fit:300:300/plain/books/a.jpg@webp" or "q:80/<base64url source>.webp"; the sidecar
// serves the result under the source's path_prefix ("/img" + url). `expires` (unix
// seconds) adds imgproxy's exp: option first, as `sidecar sign` does. Absolute plain
// sources ("plain/http://...") hold "//", which the sidecar refuses: base64url-encode them.
// https://docs.imgproxy.net/usage/signing_url
// Keep this code on your server: the key and salt must never reach a browser.
import { createHmac } from 'node:crypto';

export function signImgproxy(rest, { key, salt, signatureSize = 32, expires } = {}) {
  if (!rest || rest.startsWith('/')) throw new Error('rest: the options and source, no leading /');
  if (rest.includes('?')) throw new Error('rest: imgproxy signs the path alone, no query');
  if (!Number.isInteger(signatureSize) || signatureSize < 1 || signatureSize > 32) {
    throw new Error('signatureSize: 1 to 32 bytes');
  }
  const signed = expires === undefined ? rest : `exp:${expires}/${rest}`;
  const digest = createHmac('sha256', Buffer.from(key, 'hex'))
    .update(Buffer.from(salt, 'hex'))
    .update('/' + signed, 'utf8')
    .digest();
  return `/${digest.subarray(0, signatureSize).toString('base64url')}/${signed}`;
}

// Scheme thumbor: thumbor's signed URLs, with Node's built-in crypto (no npm dependencies).
//   url = "/" + base64url(HMAC-SHA1(securityKey, rest)) + "/" + rest
// base64url WITH its "=" padding (28 characters), as libthumbor's CryptoURL and thumbor's
// server write it. `rest` is thumbor's options and the image path exactly as they will
// be sent (already percent-encoded), e.g. "300x200/smart/books/a.jpg"; the sidecar serves
// the result under the source's path_prefix ("/thumbs" + url). The key is UTF-8, as
// thumbor's server reads it. Never "unsafe/": the sidecar refuses it.
// https://thumbor.readthedocs.io/en/latest/security.html
// Keep this code on your server: the security key must never reach a browser.
import { createHmac } from 'node:crypto';

export function signThumbor(rest, securityKey) {
  if (!rest || rest.startsWith('/')) throw new Error('rest: the options and image path, no leading /');
  if (rest.startsWith('unsafe/')) throw new Error("rest: remove 'unsafe/', the signature takes its place");
  // Node's 'base64url' drops the padding thumbor keeps: use 'base64' and swap the alphabet.
  const signature = createHmac('sha1', Buffer.from(securityKey, 'utf8'))
    .update(rest, 'utf8')
    .digest('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
  return `/${signature}/${rest}`;
}

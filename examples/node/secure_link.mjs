// Signing for nginx's own secure_link module (scheme nginx-secure-link), with Node's
// built-in crypto: https://nginx.org/en/docs/http/ngx_http_secure_link_module.html
// Keep this code on your server: the secret must never reach a browser.
import { createHash } from 'node:crypto';

// The default expression is the nginx docs' example, with `secret` standing for the key:
//   secure_link $arg_md5,$arg_expires;
//   secure_link_md5 "$secure_link_expires$uri$remote_addr secret";
// `expression(uri)` gets the decoded path ($uri) and returns the string nginx hashes.
// In that default nothing separates $uri from $remote_addr, so a link for /a.jpg bound to
// 11.2.3.4 also opens /a.jpg1 for 1.2.3.4: prefer "$secure_link_expires$uri $remote_addr
// secret" in nginx, and an `expression` that puts the same space between path and address.
export function signSecureLink(url, secret, { expires, clientIp, expression } = {}) {
  if (!Number.isInteger(expires) || expires <= 0) throw new Error('expires: unix seconds');
  const pathStart = url.startsWith('/') ? 0 : url.indexOf('/', url.indexOf('://') + 3);
  if (pathStart < 0) throw new Error('URL must be absolute or start with /');
  const origin = url.slice(0, pathStart);
  let uri = url.slice(pathStart);
  if (uri.endsWith('?')) uri = uri.slice(0, -1);
  // nginx's $uri is the decoded path: the hash covers it, not the bytes as sent.
  const path = decodeURIComponent(uri.split('?')[0]);
  if (!expression && !clientIp) throw new Error('the default expression needs clientIp');
  const text = expression ? expression(path, expires) : `${expires}${path}${clientIp} ${secret}`;
  const md5 = createHash('md5').update(text, 'utf8').digest('base64url'); // no '=' padding
  return `${origin}${uri}${uri.includes('?') ? '&' : '?'}md5=${md5}&expires=${expires}`;
}

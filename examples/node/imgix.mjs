// Scheme imgix: imgix's secure URLs, with Node's built-in crypto (no npm dependencies).
// s = md5_hex(token + path + ("?" + query if any)): the token FIRST, `s` appended last.
// Sign the URL exactly as it will be sent (path and query already percent-encoded).
// An optional `expires` (unix seconds) becomes one more signed parameter.
// https://docs.imgix.com/setup/securing-images
// Keep this code on your server: the token must never reach a browser.
import { createHash } from 'node:crypto';
import { splitUrl } from './signing.mjs';

export function signImgix(url, token, { expires } = {}) {
  const [origin, uriWithMark] = splitUrl(url);
  let uri = uriWithMark.endsWith('?') ? uriWithMark.slice(0, -1) : uriWithMark;
  if (expires !== undefined) uri += `${uri.includes('?') ? '&' : '?'}expires=${expires}`;
  const s = createHash('md5').update(token + uri, 'utf8').digest('hex');
  return `${origin}${uri}${uri.includes('?') ? '&' : '?'}s=${s}`;
}

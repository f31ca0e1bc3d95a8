// Scheme cloudflare: Cloudflare's timed HMAC token (the WAF rule is_timed_hmac_valid_v0,
// the signed-URL Worker example), with Node's built-in crypto (no npm dependencies):
//   mac = base64(HMAC-SHA256(secret, uri + time))       standard alphabet, padded
//   url = uri + ("?" or "&") + param + "=" + time + "-" + encodeURIComponent(mac)
// `uri` is the path and query exactly as they will be sent (already percent-encoded);
// `time` is the unix second the URL is issued: it is valid for the source's max_age
// seconds after it. Keep this code on your server: the secret must never reach a browser.
import { createHmac } from 'node:crypto';
import { splitUrl } from './signing.mjs';

export function signCloudflare(url, { secret, time, param = 'verify' }) {
  if (!Number.isSafeInteger(time) || time < 0) throw new Error('time: unix seconds');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(param)) throw new Error('param: a plain name');
  const [origin, uriWithMark] = splitUrl(url);
  const uri = uriWithMark.endsWith('?') ? uriWithMark.slice(0, -1) : uriWithMark;
  const mac = createHmac('sha256', secret).update(`${uri}${time}`, 'utf8').digest('base64');
  // encodeURIComponent writes "+", "/" and "=" as %2B, %2F, %3D: the one spelling.
  return `${origin}${uri}${uri.includes('?') ? '&' : '?'}${param}=${time}-${encodeURIComponent(mac)}`;
}

// Scheme hmac-sha256, our recommended format for new signers, with Node's built-in
// crypto (no npm dependencies):
//   unsigned = uri + ("?" or "&") + "expires=E&kid=K"
//   url      = unsigned + "&sig=" + base64url_nopad(HMAC-SHA256(secret, unsigned))
// `uri` is the path and query exactly as they will be sent (already percent-encoded);
// E is unix seconds (required), K the key id that names the secret.
// Keep this code on your server: the secret must never reach a browser.
import { createHmac } from 'node:crypto';
import { splitUrl } from './signing.mjs';

export function signHmacSha256(url, { kid, secret, expires }) {
  if (!Number.isSafeInteger(expires) || expires < 0) throw new Error('expires: unix seconds');
  const [origin, uriWithMark] = splitUrl(url);
  const uri = uriWithMark.endsWith('?') ? uriWithMark.slice(0, -1) : uriWithMark;
  const unsigned = `${uri}${uri.includes('?') ? '&' : '?'}expires=${expires}&kid=${kid}`;
  // Node's 'base64url' is RFC 4648 §5 without padding, as the sidecar expects.
  const sig = createHmac('sha256', secret).update(unsigned, 'utf8').digest('base64url');
  return `${origin}${unsigned}&sig=${sig}`;
}

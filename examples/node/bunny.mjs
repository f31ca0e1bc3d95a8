// Scheme bunny: Bunny CDN token authentication, the HS256- token BunnyWay's current
// signers write, with Node's built-in crypto (no npm dependencies):
//   data  = the query's parameters (and token_path, token_countries…) sorted, "name=value" joined by "&"
//   token = "HS256-" + ("1-" if bound) + base64url(HMAC-SHA256(secret, path + expires + ip bytes + data))
//   url   = path + "?token=" + token + "&name=" + encoded value … + "&expires=" + expires
//   isDirectory (the path form, for video players: relative segment URLs keep the token):
//   url   = "/bcdn_token=" + token + "&name=" + encoded value … + "&expires=" + expires + path
// `path` is the path exactly as it will be sent, or `pathAllowed` (token_path: every path
// below it). An IPv6 address binds its /64. Keep this code on your server: the zone's
// key must never reach a browser.
import { createHmac } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { splitUrl } from './signing.mjs';

// Python's quote(value, safe=''): RFC 3986's unreserved characters kept, all else %XX.
function encodeValue(value) {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// The address's bytes as the token binds them: IPv4's 4, IPv6's first 8 (its /64) then 8 zeros.
function addressBytes(ip) {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) ip = mapped[1]; // an IPv4 client of a dual-stack socket is the IPv4 address
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error('userIp: an IP address');
  const compressed = new URL(`http://[${ip}]/`).hostname.slice(1, -1); // embedded IPv4 as hex
  const [head, tail] = compressed.includes('::') ? compressed.split('::') : [compressed, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const bytes = Buffer.alloc(16);
  groups.slice(0, 4).forEach((group, index) => bytes.writeUInt16BE(parseInt(group, 16), index * 2));
  return bytes;
}

function queryParams(query) {
  const params = new Map();
  for (const pair of query ? query.split('&') : []) {
    const cut = pair.indexOf('=');
    const name = cut < 0 ? pair : pair.slice(0, cut);
    const value = decodeURIComponent((cut < 0 ? '' : pair.slice(cut + 1)).replace(/\+/g, ' '));
    if (!/^[A-Za-z0-9_.~-]{1,64}$/.test(name)) throw new Error(`parameter '${name}': a plain name`);
    if (['token', 'bcdn_token', 'expires'].includes(name)) throw new Error(`URL already carries '${name}'`);
    if (params.has(name)) throw new Error(`parameter '${name}' repeated: Bunny signs one value`);
    params.set(name, value);
  }
  return params;
}

export function signBunny(url, { secret, expires, userIp, pathAllowed, countriesAllowed, countriesBlocked, isDirectory }) {
  if (!secret) throw new Error('secret: the zone key');
  if (!Number.isSafeInteger(expires) || expires < 0) throw new Error('expires: unix seconds');
  const [origin, uri] = splitUrl(url);
  const [path, query] = uri.split(/\?(.*)/s);
  const params = queryParams(query);
  if (countriesAllowed) params.set('token_countries', countriesAllowed);
  if (countriesBlocked) params.set('token_countries_blocked', countriesBlocked);
  if (pathAllowed) {
    const scope = pathAllowed.replace(/\/+$/, '');
    if (!pathAllowed.startsWith('/') || !(path === pathAllowed || path.startsWith(`${scope}/`))) {
      throw new Error('pathAllowed: a path equal to or above the URL');
    }
    params.set('token_path', pathAllowed);
  }
  const sorted = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const data = sorted.map(([name, value]) => `${name}=${value}`).join('&');
  const address = userIp ? addressBytes(userIp) : Buffer.alloc(0);
  const hmac = createHmac('sha256', secret);
  hmac.update(`${pathAllowed || path}${expires}`, 'utf8').update(address).update(data, 'utf8');
  const token = `HS256-${userIp ? '1-' : ''}${hmac.digest('base64url')}`;
  const tail = sorted.map(([name, value]) => `&${name}=${encodeValue(value)}`).join('');
  if (isDirectory) {
    // nginx's path-form snippet serves the path as written: no percent-escape in it.
    if (!/^\/[A-Za-z0-9._~!&()*+,=:@\/-]*$/.test(path)) throw new Error('isDirectory: a plainly written path');
    return `${origin}/bcdn_token=${token}${tail}&expires=${expires}${path}`;
  }
  return `${origin}${path}?token=${token}${tail}&expires=${expires}`;
}

// Scheme s3-sigv4: an AWS Signature Version 4 presigned GET URL, as botocore's
// generate_presigned_url (and S3 itself) make it, with Node's built-in crypto:
//   canonical = "GET\n" + path + "\n" + query + "\nhost:" + host + "\n\nhost\nUNSIGNED-PAYLOAD"
//   toSign    = "AWS4-HMAC-SHA256\n" + X-Amz-Date + "\n" + scope + "\n" + hex(SHA256(canonical))
//   key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")
//   url       = url + X-Amz-* parameters + "&X-Amz-Signature=" + hex(HMAC(key, toSign))
// `url` is absolute, its host the source's public_origin (the host is signed), its path
// and query exactly as they will be sent, the query already in AWS's encoding.
// `time` is the signing second (X-Amz-Date): the URL is valid from then for `expiresIn`
// seconds (at most seven days). Keep this code on your server: the secret must never
// reach a browser.
import { createHash, createHmac } from 'node:crypto';
import { splitUrl } from './signing.mjs';

const ALGORITHM = 'AWS4-HMAC-SHA256';
const MAX_EXPIRES = 604800;
const SCOPE_PART = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SIGNING_NAMES = ['x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires',
  'x-amz-signedheaders', 'x-amz-signature', 'x-amz-security-token'];

export function presignS3Get(url, { accessKeyId, secretAccessKey, region, service = 's3', time, expiresIn }) {
  if (!Number.isSafeInteger(time) || time < 0) throw new Error('time: unix seconds');
  if (!Number.isSafeInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRES) {
    throw new Error(`expiresIn: 1 to ${MAX_EXPIRES} seconds`);
  }
  if (!SCOPE_PART.test(region) || !SCOPE_PART.test(service)) {
    throw new Error('region and service: lowercase letters, digits, "-"');
  }
  const [origin, uri] = splitUrl(url);
  if (!origin) throw new Error('url: absolute (its host is signed)');
  const [path, query = ''] = splitOnce(uri, '?');
  const given = query === '' ? [] : query.split('&').map(queryPair);
  const amzDate = new Date(time * 1000).toISOString().replace(/[-:]|\.[0-9]{3}/g, '');
  const scope = `${amzDate.slice(0, 8)}/${region}/${service}/aws4_request`;
  const own = [['X-Amz-Algorithm', ALGORITHM], ['X-Amz-Credential', awsEncode(`${accessKeyId}/${scope}`)],
    ['X-Amz-Date', amzDate], ['X-Amz-Expires', String(expiresIn)], ['X-Amz-SignedHeaders', 'host']];
  // The host header a signer sends: the default port left out, IPv6 in brackets.
  const host = new URL(origin).host;
  const canonical = ['GET', path, joined([...given, ...own].sort(byNameThenValue)), `host:${host}`,
    '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = [ALGORITHM, amzDate, scope, createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, amzDate.slice(0, 8));
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const signature = hmac(key, toSign).toString('hex');
  return `${origin}${path}?${joined([...given, ...own])}&X-Amz-Signature=${signature}`;
}

function hmac(key, text) {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text] : [text.slice(0, at), text.slice(at + 1)];
}

// name=value, each in AWS's encoding (its one spelling): the sidecar refuses any other.
function queryPair(pair) {
  const [name, value] = splitOnce(pair, '=');
  if (!name || value === undefined || !awsEncoded(name) || !awsEncoded(value)) {
    throw new Error(`query: "${pair}" is not name=value in AWS's encoding`);
  }
  if (SIGNING_NAMES.includes(name.toLowerCase())) throw new Error('query: already signed (X-Amz-*)');
  return [name, value];
}

function awsEncoded(text) {
  try {
    return awsEncode(decodeURIComponent(text)) === text;
  } catch {
    return false; // a lone "%" or bytes that are not UTF-8
  }
}

// AWS's URI encoding: encodeURIComponent leaves ! ' ( ) * as they are; AWS does not.
function awsEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// AWS sorts by name, then value: "w=400" before "w2=1", though "2" sorts before "=".
function byNameThenValue([nameA, valueA], [nameB, valueB]) {
  if (nameA !== nameB) return nameA < nameB ? -1 : 1;
  return valueA < valueB ? -1 : valueA > valueB ? 1 : 0;
}

function joined(pairs) {
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

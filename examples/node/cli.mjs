// Command line over the examples, one signed URL per call on stdout:
//   node cli.mjs md5 URL TOKEN [EXPIRES]
//   node cli.mjs cloudfront URL KEY_PAIR_ID PRIVATE_KEY_FILE EXPIRES [SHA1|SHA256]
//   node cli.mjs api BASE_URL TEAM_ID URL            (API key from $SIGNING_API_KEY)
//   node cli.mjs revoke BASE_URL TEAM_ID URL         (prints the revocation record as JSON)
//   node cli.mjs secure-link URL SECRET EXPIRES [CLIENT_IP]   (nginx secure_link, docs' expression)
//   node cli.mjs imgix URL TOKEN [EXPIRES]
//   node cli.mjs hmac-sha256 URL KID SECRET EXPIRES
//   node cli.mjs gcdn URL KEY_NAME BASE64_KEY EXPIRES [URL_PREFIX]
//   node cli.mjs thumbor SECURITY_KEY REST    (prints /<signature>/<REST>; REST like 300x200/smart/books/a.jpg)
//   node cli.mjs akamai URL HEX_KEY EXPIRES [ACL]
//   node cli.mjs cloudfront-cookies ORIGIN PREFIX KEY_PAIR_ID PRIVATE_KEY_FILE EXPIRES   (three Set-Cookie values, one a line)
import { readFileSync } from 'node:fs';
import { signMd5Token, signCloudFront } from './signing.mjs';
import { revokeViaApi, signUrlViaApi } from './api.mjs';
import { signSecureLink } from './secure_link.mjs';

const [command, ...args] = process.argv.slice(2);
if (command === 'md5') {
  const [url, token, expires] = args;
  console.log(signMd5Token(url, token, { expires: expires && Number(expires) }));
} else if (command === 'cloudfront') {
  const [url, keyPairId, keyFile, expires, hashAlgorithm] = args;
  const privateKeyPem = readFileSync(keyFile, 'utf8');
  console.log(signCloudFront(url, { keyPairId, privateKeyPem, expires: Number(expires), hashAlgorithm }));
} else if (command === 'secure-link') {
  const [url, secret, expires, clientIp = '127.0.0.1'] = args;
  console.log(signSecureLink(url, secret, { expires: Number(expires), clientIp }));
} else if (command === 'api') {
  const [baseUrl, teamId, url] = args;
  console.log(await signUrlViaApi({ baseUrl, teamId, apiKey: process.env.SIGNING_API_KEY, url }));
} else if (command === 'revoke') {
  const [baseUrl, teamId, url] = args;
  const record = await revokeViaApi({ baseUrl, teamId, apiKey: process.env.SIGNING_API_KEY, url });
  console.log(JSON.stringify(record));
} else if (command === 'imgix') {
  const { signImgix } = await import('./imgix.mjs');
  const [url, token, expires] = args;
  console.log(signImgix(url, token, { expires: expires && Number(expires) }));
} else if (command === 'hmac-sha256') {
  const { signHmacSha256 } = await import('./hmac_sha256.mjs');
  const [url, kid, secret, expires] = args;
  console.log(signHmacSha256(url, { kid, secret, expires: Number(expires) }));
} else if (command === 'gcdn') {
  const { signGcdn } = await import('./gcdn.mjs');
  const [url, keyName, base64Key, expires, urlPrefix] = args;
  console.log(signGcdn(url, { keyName, base64Key, expires: Number(expires), urlPrefix }));
} else if (command === 'akamai') {
  const { signAkamai } = await import('./akamai.mjs');
  const [url, hexKey, expires, acl] = args;
  console.log(signAkamai(url, { hexKey, expires: Number(expires), acl }));
} else if (command === 'cloudfront-cookies') {
  const { signCloudFrontCookies } = await import('./cloudfront_cookies.mjs');
  const [origin, prefix, keyPairId, keyFile, expires] = args;
  const privateKeyPem = readFileSync(keyFile, 'utf8');
  console.log(signCloudFrontCookies(origin, prefix, { keyPairId, privateKeyPem, expires: Number(expires) }).join('\n'));
} else if (command === 'thumbor') {
  const { signThumbor } = await import('./thumbor.mjs');
  const [securityKey, rest] = args;
  console.log(signThumbor(rest, securityKey));
} else {
  console.error('usage: node cli.mjs md5|cloudfront|cloudfront-cookies|imgix|hmac-sha256|gcdn|secure-link|akamai|thumbor|api|revoke ...');
  process.exit(2);
}

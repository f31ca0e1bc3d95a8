// Command line over the examples, one signed URL per call on stdout:
//   node cli.mjs md5 URL TOKEN [EXPIRES]
//   node cli.mjs cloudfront URL KEY_PAIR_ID PRIVATE_KEY_FILE EXPIRES [SHA1|SHA256]
//   node cli.mjs api BASE_URL TEAM_ID URL            (API key from $SIGNING_API_KEY)
import { readFileSync } from 'node:fs';
import { signMd5Token, signCloudFront } from './signing.mjs';
import { signUrlViaApi } from './api.mjs';

const [command, ...args] = process.argv.slice(2);
if (command === 'md5') {
  const [url, token, expires] = args;
  console.log(signMd5Token(url, token, { expires: expires && Number(expires) }));
} else if (command === 'cloudfront') {
  const [url, keyPairId, keyFile, expires, hashAlgorithm] = args;
  const privateKeyPem = readFileSync(keyFile, 'utf8');
  console.log(signCloudFront(url, { keyPairId, privateKeyPem, expires: Number(expires), hashAlgorithm }));
} else if (command === 'api') {
  const [baseUrl, teamId, url] = args;
  console.log(await signUrlViaApi({ baseUrl, teamId, apiKey: process.env.SIGNING_API_KEY, url }));
} else {
  console.error('usage: node cli.mjs md5|cloudfront|api ...');
  process.exit(2);
}

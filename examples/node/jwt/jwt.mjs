// Scheme jwt: a token minted with the `jose` package (npm install, in this folder), the
// signer most Node issuers already run. The token names what it opens in its scope claim
// (`sub` by default: a path, or a prefix ending at a segment boundary), carries `exp`,
// and goes in the URL's `token` parameter (the source's `token_param`).
// Keep this code on your server: the key must never reach a browser.
import { SignJWT, importPKCS8 } from 'jose';

// alg: HS256/384/512 (key = the secret's text), or RS*/PS*/ES256/ES384/EdDSA (key = a
// PKCS#8 PEM private key). kid: the key's id in the source. scope: the path it opens.
export async function signJwtUrl(url, { alg, kid, key, scope, expires, param = 'token' }) {
  if (!Number.isSafeInteger(expires) || expires < 0) throw new Error('expires: unix seconds');
  const secret = alg.startsWith('HS') ? new TextEncoder().encode(key) : await importPKCS8(key, alg);
  const token = await new SignJWT({ sub: scope })
    .setProtectedHeader({ alg, kid })
    .setExpirationTime(expires)
    .sign(secret);
  const [base, query = ''] = url.split('?', 2);
  const joined = query ? `${base}?${query}&` : `${base}?`;
  return `${joined}${param}=${token}`;
}

// node jwt.mjs URL ALG KID KEY_FILE_OR_SECRET SCOPE EXPIRES
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  const [url, alg, kid, key, scope, expires] = process.argv.slice(2);
  const { readFileSync, existsSync } = await import('node:fs');
  const material = existsSync(key) ? readFileSync(key, 'utf8') : key;
  console.log(await signJwtUrl(url, { alg, kid, key: material, scope, expires: Number(expires) }));
}

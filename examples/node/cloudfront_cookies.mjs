// CloudFront signed cookies (scheme cloudfront, source setting accept_cookies = true):
// one grant for every file under a prefix, as AWS documents it
// https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-setting-signed-cookie-custom-policy.html
// Node's built-in crypto only; RSA or ECDSA P-256 private keys (PEM), SHA-1 like botocore.
import { createSign } from 'node:crypto';

// CloudFront's URL-safe base64: + -> -, = -> _, / -> ~
function cloudFrontBase64(buffer) {
  return buffer.toString('base64').replace(/\+/g, '-').replace(/=/g, '_').replace(/\//g, '~');
}

// The three Set-Cookie values granting `origin + prefix + "*"` until `expires` (unix
// seconds). The prefix must end with "/": "/books*" would also open "/books-other/".
export function signCloudFrontCookies(origin, prefix, { keyPairId, privateKeyPem, expires }) {
  if (!prefix.startsWith('/') || !prefix.endsWith('/') || /[*?;\s]/.test(prefix)) {
    throw new Error('prefix must be a plain path ending at a segment boundary ("/")');
  }
  // Compact JSON in the AWS signers' key order: the bytes that are signed.
  const policy = JSON.stringify({
    Statement: [{ Resource: `${origin}${prefix}*`, Condition: { DateLessThan: { 'AWS:EpochTime': expires } } }],
  });
  const signer = createSign('SHA1');
  signer.update(policy);
  const signature = cloudFrontBase64(signer.sign(privateKeyPem));
  const attributes = `Path=${prefix}; Expires=${new Date(expires * 1000).toUTCString()}; Secure; HttpOnly; SameSite=Lax`;
  return [
    `CloudFront-Policy=${cloudFrontBase64(Buffer.from(policy))}; ${attributes}`,
    `CloudFront-Signature=${signature}; ${attributes}`,
    `CloudFront-Key-Pair-Id=${keyPairId}; ${attributes}`,
  ];
}

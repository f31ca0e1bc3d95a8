// Asking the sidecar's signing API for a signed URL, with Node's built-in fetch.
export async function signUrlViaApi({ baseUrl, teamId, apiKey, url, expiresIn }) {
  const query = new URLSearchParams({ url });
  if (expiresIn !== undefined) query.set('expiresIn', String(expiresIn));
  const endpoint = `${baseUrl}/public/team/${encodeURIComponent(teamId)}/signUrl?${query}`;
  const response = await fetch(endpoint, { headers: { 'X-Api-Key': apiKey } });
  const body = await response.json();
  if (!response.ok) throw new Error(`signing failed (${response.status}): ${body.error}`);
  return body.signedUrl;
}

// Taking back the grant a signed URL carries (or every grant under { prefix }), within
// the team's source. Needs [state] in the sidecar's config. Returns the revocation
// record: { id, source, kind, value, until, created }.
export async function revokeViaApi({ baseUrl, teamId, apiKey, url, prefix, until }) {
  const endpoint = `${baseUrl}/public/team/${encodeURIComponent(teamId)}/revoke`;
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: { 'X-Api-Key': apiKey, 'Content-Type': 'application/json' },
    body: JSON.stringify({ url, prefix, until }), // undefined members are left out
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`revoking failed (${response.status}): ${body.error}`);
  return body;
}

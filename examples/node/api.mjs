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

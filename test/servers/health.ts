/** Readiness probe: a server is up when GET [base]/metadata answers 200. */

/**
 * Asks one server for its CapabilityStatement.
 * @param baseUrl - FHIR base URL
 * @param timeoutMs - per-request timeout
 * @returns true when the server answered 200
 */
export async function answersMetadata(baseUrl: string, timeoutMs = 3000): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/metadata`, {
      headers: { accept: 'application/fhir+json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

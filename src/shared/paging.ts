/**
 * Following paging links: the one rule for every search and history read of the service (the
 * feeds in src/changes and the stores in src/sync). A `next` link is followed only on the
 * server's own origin, since credentials go with the request; a server reached at 127.0.0.1
 * that names itself localhost is the same server.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { FEED_ERR_BAD_RESPONSE, FEED_ERR_FOREIGN_LINK } from './errors/index.ts';
import { urlPath } from './fhir-client.ts';

/**
 * The bundle's `next` link, checked to stay on the server's origin (credentials go with it).
 * @param bundle - a search or history bundle.
 * @param baseUrl - the server's base URL.
 * @param url - the URL the bundle came from, for messages.
 * @returns the absolute next URL, or undefined on the last page.
 */
export function nextLink(bundle: Bundle, baseUrl: string, url: string): string | undefined {
  const href = bundle.link?.find((l) => l.relation === 'next')?.url;
  if (!href) {
    return undefined;
  }
  let next: URL;
  try {
    next = new URL(href, url);
  } catch {
    throw FEED_ERR_BAD_RESPONSE.create(urlPath(url), 'next link is not a URL');
  }
  const base = new URL(baseUrl);
  if (next.origin === base.origin) {
    return next.toString();
  }
  // A server reached at 127.0.0.1 that names itself localhost (Medplum) is the same server:
  // the link is followed at the registered address, so the request goes where the network
  // policy and the credentials were checked for.
  if (
    next.protocol === base.protocol &&
    portOf(next) === portOf(base) &&
    isLoopbackName(next.hostname) &&
    isLoopbackName(base.hostname)
  ) {
    next.host = base.host;
    return next.toString();
  }
  throw FEED_ERR_FOREIGN_LINK.create(urlPath(url), next.origin);
}

/**
 * Whether a bundle has a `next` link, without following or checking it (keyset paging only
 * needs to know whether more pages exist).
 * @param bundle - a searchset or history bundle.
 * @returns true when a `next` link is present.
 */
export function hasNextLink(bundle: Bundle): boolean {
  return bundle.link?.some((l) => l.relation === 'next' && typeof l.url === 'string' && l.url !== '') === true;
}

function portOf(u: URL): string {
  return u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
}

function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

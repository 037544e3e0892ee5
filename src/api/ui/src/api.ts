/**
 * Calls to this same server with the signed-in token. The token lives in this tab only
 * (sessionStorage): it is gone when the tab closes and is never sent anywhere else.
 */
const TOKEN_KEY = 'fhir-sync.token';

export interface Answer<T = unknown> {
  readonly ok: boolean;
  readonly status: number;
  readonly data: T;
  readonly etag: string | null;
}

/** A problem+json body, as every API error is. */
export interface Problem {
  readonly title?: string;
  readonly detail?: string;
  readonly code?: string;
  readonly errors?: readonly ProblemItem[];
}

export interface ProblemItem {
  readonly detail: string;
  readonly pointer?: string;
  readonly line?: number;
  readonly column?: number;
}

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(value: string): void {
  if (value === '') {
    sessionStorage.removeItem(TOKEN_KEY);
  } else {
    sessionStorage.setItem(TOKEN_KEY, value);
  }
}

export async function call<T = unknown>(
  method: string,
  path: string,
  body?: { readonly text: string; readonly type: string },
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${token()}`, ...headers } };
  if (body !== undefined) {
    init.body = body.text;
    (init.headers as Record<string, string>)['content-type'] = body.type;
  }
  const res = await fetch(path, init);
  const type = res.headers.get('content-type') ?? '';
  const data = (type.includes('json') ? await res.json() : await res.text()) as T;
  return { ok: res.ok, status: res.status, data, etag: res.headers.get('etag') };
}

export const json = (value: unknown): { text: string; type: string } => ({
  text: JSON.stringify(value),
  type: 'application/json',
});

export const yaml = (text: string): { text: string; type: string } => ({ text, type: 'application/yaml' });

/** One line for a failed answer: the problem's detail or title, and its code. */
export function problemText(answer: Answer): string {
  const p = answer.data as Problem | string;
  if (typeof p === 'string') {
    return `HTTP ${answer.status}`;
  }
  const text = p.detail ?? p.title ?? `HTTP ${answer.status}`;
  return p.code ? `${text} (${p.code})` : text;
}

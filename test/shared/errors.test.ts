/**
 * One error catalogue: every code the source writes as a literal is defined in
 * src/shared/errors/ (stable code, status, retryable flag), and no code is defined twice.
 * Framework codes (Fastify's FST_ERR_*) are read, never defined, and are left out.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as catalogue from '../../src/shared/errors/index.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('error catalogue', () => {
  it('defines every code the source uses, each once', () => {
    const defined = Object.values(catalogue).flatMap((v) =>
      typeof v === 'object' && v !== null && 'code' in v && typeof v.code === 'string' ? [v.code] : [],
    );
    expect(defined.length).toBeGreaterThan(50);
    expect(new Set(defined).size).toBe(defined.length);
    const used = new Map<string, string>();
    for (const file of sources('src')) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'([A-Z]+_ERR_[A-Z0-9_]+)'/g)) {
        if (!m[1]!.startsWith('FST_')) {
          used.set(m[1]!, file);
        }
      }
    }
    const missing = [...used].filter(([code]) => !defined.includes(code)).map(([c, f]) => `${c} (${f})`);
    expect(missing).toEqual([]);
  });
});

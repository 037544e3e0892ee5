/**
 * Layout rules (issue 15, "one owner per concept"), checked on the import statements of the
 * source: the engine, change feeds, sync and instance registry never reach into the HTTP
 * layer (the API depends on them, not the other way round), and the first three never load
 * Fastify. A regex over the text is enough: the style forbids `require`, and every import
 * here is a static string.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const API = join(ROOT, 'src', 'api');

/** `from '…'`, side-effect `import '…'`, `export … from '…'` and `import('…')`. */
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|js|mjs|cjs)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(SPECIFIER)].map((m) => m[1]!);
}

/** Every `file: specifier` under the folders whose import matches the test. */
function offending(folders: readonly string[], bad: (specifier: string, file: string) => boolean): string[] {
  return folders.flatMap((folder) =>
    sourceFiles(join(ROOT, 'src', folder)).flatMap((file) =>
      importsOf(file)
        .filter((s) => bad(s, file))
        .map((s) => `${relative(ROOT, file)}: ${s}`),
    ),
  );
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + sep);
}

describe('architecture', () => {
  it('finds the imports it checks (guards the regex)', () => {
    const main = importsOf(join(ROOT, 'src', 'main.ts'));
    expect(main).toContain('./api/index.ts');
    expect(main).toContain('./anonymizer/index.ts');
  });

  it('keeps src/anonymizer, src/changes, src/sync and src/instances free of src/api imports', () => {
    const bad = offending(['anonymizer', 'changes', 'sync', 'instances'], (s, file) =>
      s.startsWith('.') ? isUnder(resolve(dirname(file), s), API) : false,
    );
    expect(bad).toEqual([]);
  });

  it('keeps Fastify out of src/anonymizer, src/changes and src/sync', () => {
    const bad = offending(['anonymizer', 'changes', 'sync'], (s) => /^(fastify|fastify-plugin|@fastify\/)/.test(s));
    expect(bad).toEqual([]);
  });
});

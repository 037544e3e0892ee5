import { mkdtemp, readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { atomicWrite } from '../../src/shared/atomic-write.ts';

describe('atomicWrite', () => {
  it('replaces a file whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
    const file = join(dir, 'rules.yaml');
    await writeFile(file, 'old');
    await atomicWrite(file, 'new');
    expect(await readFile(file, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['rules.yaml']);
  });

  it('leaves no temp file and the old content when the write fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
    const file = join(dir, 'rules.yaml');
    await writeFile(file, 'old');
    // Not a string: the write itself throws after the temp file was opened.
    await expect(atomicWrite(file, Symbol('bad') as unknown as string)).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['rules.yaml']);
    expect(await readFile(file, 'utf8')).toBe('old');
  });

  it('leaves no temp file when the rename fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
    const target = join(dir, 'taken');
    await mkdir(join(target, 'inside'), { recursive: true }); // a non-empty directory cannot be replaced
    await expect(atomicWrite(target, 'x')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['taken']);
  });
});

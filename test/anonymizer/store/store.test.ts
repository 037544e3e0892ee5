/**
 * The file rules store on its own: boot over an invalid file, its versions directory, the
 * file watcher and serialised replacements. (The routes over it are in test/api/rules.test.ts;
 * `setup` there lays out the rules file and versions directory these tests reuse.)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileRulesStore, rulesVersionOf } from '../../../src/anonymizer/index.ts';
import { RULES_V1, RULES_V2, setup, testEngine } from '../../api/helpers.ts';

const BAD_RULES =
  'rules:\n  - path: Patient.name\n    method: redact\n  - path: Patient.birthDate\n    method: scramble\n';

describe('file rules store', () => {
  it('refuses to open over an invalid rules file', async () => {
    const ctx = await setup();
    await ctx.app.close();
    await writeFile(ctx.rulesFile, BAD_RULES);
    await expect(
      createFileRulesStore({ file: ctx.rulesFile, versionsDir: ctx.versionsDir, engine: testEngine }),
    ).rejects.toMatchObject({
      code: 'TEST_ERR_RULES',
    });
  });

  it('keeps its versions directory out of git', async () => {
    const ctx = await setup();
    await ctx.app.close();
    expect(await readFile(join(ctx.versionsDir, '.gitignore'), 'utf8')).toBe('*\n');
  });

  it('picks up a valid change on disk and ignores an invalid one', async () => {
    const ctx = await setup();
    await ctx.app.close();
    const errors: unknown[] = [];
    const store = await createFileRulesStore({
      file: ctx.rulesFile,
      versionsDir: ctx.versionsDir,
      engine: testEngine,
      watchIntervalMs: 20,
      onError: (e) => errors.push(e),
    });
    const seen: string[] = [];
    store.onRulesChanged((s) => seen.push(s.version));
    await writeFile(ctx.rulesFile, BAD_RULES);
    await expect.poll(() => errors.length, { timeout: 2000 }).toBe(1);
    expect(store.current().version).toBe(rulesVersionOf(RULES_V1));
    await writeFile(ctx.rulesFile, RULES_V2);
    await expect.poll(() => store.current().version, { timeout: 2000 }).toBe(rulesVersionOf(RULES_V2));
    expect(seen).toEqual([rulesVersionOf(RULES_V2)]);
    expect((await store.history())[0]).toMatchObject({ version: rulesVersionOf(RULES_V2), author: 'filesystem' });
    store.close();
  });

  it('serializes concurrent replacements', async () => {
    const ctx = await setup();
    await ctx.app.close();
    const texts = [0, 1, 2, 3].map((i) => `${RULES_V1}# edit ${i}\n`);
    await Promise.all(texts.map((t, i) => ctx.rules.replace(t, { author: `u${i}` })));
    const history = await ctx.rules.history();
    expect(history.map((h) => h.author)).toEqual(['u3', 'u2', 'u1', 'u0', 'filesystem']);
    expect(await readFile(ctx.rulesFile, 'utf8')).toBe(texts[3]);
  });
});

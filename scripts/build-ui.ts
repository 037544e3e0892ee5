/**
 * Builds the web app served at /ui: bundles src/api/ui/src/main.ts (CodeMirror and the app)
 * into one script with esbuild, and copies the page and its style beside it.
 * `node scripts/build-ui.ts [--out <dir>]`; default out is src/api/ui/build (git-ignored),
 * which is where src/api/routes/ui.ts serves from; `npm run build` writes dist/api/ui/build.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const UI = 'src/api/ui';

/**
 * Builds the UI into a directory.
 * @param out - the output directory.
 */
export async function buildUi(out = join(UI, 'build')): Promise<void> {
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [join(UI, 'src/main.ts')],
    bundle: true,
    format: 'iife',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    outfile: join(out, 'app.js'),
    logLevel: 'warning',
  });
  await copyFile(join(UI, 'index.html'), join(out, 'index.html'));
  await copyFile(join(UI, 'app.css'), join(out, 'app.css'));
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  await buildUi(values.out);
  process.stdout.write(`web app built into ${values.out ?? join(UI, 'build')}\n`);
}

/**
 * `npm run build` makes a service that runs from dist/ alone: the compiled code, and the web
 * app bundled beside it (dist/api/ui/build), served at /ui with its script.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('npm run build', () => {
  it('produces dist/main.js that serves the API and the web app', async () => {
    await run('npm', ['run', 'build'], { timeout: 300_000 });
    const dir = await mkdtemp(join(tmpdir(), 'dist-run-'));
    const child = spawn(process.execPath, ['dist/main.js'], {
      env: {
        ...process.env,
        DEID_HMAC_KEY: `hex:${randomBytes(32).toString('hex')}`,
        API_HOST: '127.0.0.1',
        API_PORT: '0',
        FHIR_SYNC_ROLES: 'api',
        API_KEYS: `v:viewer:${randomBytes(16).toString('hex')}`,
        RULES_VERSIONS_DIR: join(dir, 'versions'),
        FHIR_SYNC_REDIS_PREFIX: `build-${randomBytes(4).toString('hex')}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
          const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
          if (m) {
            resolve(m[1]!);
          }
        });
        child.on('exit', (code) => reject(new Error(`dist/main.js exited with ${code}`)));
        setTimeout(() => reject(new Error('dist/main.js did not start in 60 s')), 60_000);
      });
      const page = await fetch(`${url}/ui`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script src="/ui/app.js">');
      const script = await fetch(`${url}/ui/app.js`);
      expect(script.status).toBe(200);
      expect((await script.text()).length).toBeGreaterThan(100_000); // CodeMirror is in the bundle
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  }, 360_000);
});

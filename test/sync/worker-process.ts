/**
 * A sync worker in its own process, for the crash tests: `startWorker` exactly as `npm start`
 * would run it, configured from the environment. Prints `ready` once it consumes the queue;
 * the tests kill it with SIGKILL.
 */
import pino from 'pino';
import { createAnonymizer, loadRulesFile, makeKey } from '../../src/anonymizer/index.ts';
import { startWorker } from '../../src/sync/index.ts';

const env = process.env;
const key = makeKey('sync-test', Buffer.from(env.SYNC_TEST_KEY_HEX ?? '', 'hex'));
const anonymizer = createAnonymizer({ rules: loadRulesFile('config/anonymization.yaml'), key });
const handle = await startWorker({
  instances: env.SYNC_TEST_INSTANCES ?? 'config/instances.yaml',
  prefix: env.SYNC_TEST_PREFIX,
  logger: pino({ level: env.SYNC_TEST_LOG ?? 'silent' }),
  anonymizer,
  key,
  concurrency: 1,
  lockTtlMs: 3000,
  lockDurationMs: 3000,
  stalledIntervalMs: 1000,
  retry: { attempts: 4, baseDelayMs: 500, maxDelayMs: 4000 },
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  handle.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

/**
 * `npm run servers:build|start|stop|status`: manage the HAPI FHIR test servers by hand, e.g. to
 * keep them running between integration test runs (the global setup reuses running servers).
 */
import { loadServersConfig } from './config.ts';
import { runMavenBuild } from './maven.ts';
import { serverStatus, startServers, stopServers } from './servers.ts';

const Command = { build: 'build', start: 'start', stop: 'stop', status: 'status' } as const;
type Command = (typeof Command)[keyof typeof Command];

function isCommand(value: string | undefined): value is Command {
  return value !== undefined && Object.hasOwn(Command, value);
}

async function run(command: Command): Promise<void> {
  switch (command) {
    case 'build': {
      const config = loadServersConfig();
      const ms = await runMavenBuild(config.hapiDir, config.mavenBin);
      console.log(`[servers] build done in ${(ms / 1000).toFixed(1)} s`);
      return;
    }
    case 'start': {
      const result = await startServers();
      console.log(`[servers] ready: ${Object.values(result.urls).join('  ')}`);
      return;
    }
    case 'stop': {
      const stopped = await stopServers();
      console.log(stopped.length > 0 ? `[servers] stopped ${stopped.join(', ')}` : '[servers] none running');
      return;
    }
    case 'status': {
      for (const s of await serverStatus()) {
        const proc = s.processAlive ? `pid ${String(s.pid)}` : 'no recorded process';
        console.log(`${s.name.padEnd(8)} ${s.baseUrl}  ${s.answering ? 'UP' : 'DOWN'}  (${proc})`);
      }
      return;
    }
    default:
      command satisfies never;
  }
}

const command = process.argv[2];
if (!isCommand(command)) {
  console.error(`usage: node test/servers/cli.ts ${Object.keys(Command).join('|')}`);
  process.exitCode = 2;
} else {
  try {
    await run(command);
  } catch (err) {
    console.error(`[servers] ${command} failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

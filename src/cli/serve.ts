/**
 * `fhir-sync serve [--roles api,worker,scheduler]`: the service, as `npm start` runs it.
 * Returns when a signal has stopped it.
 */
import { serve } from '../main.ts';
import type { CliIo } from './main.ts';

/**
 * Runs the service in this process.
 * @param argv - `--roles ...`.
 * @param io - environment and error stream.
 * @returns the exit code.
 */
export default function serveCommand(argv: string[], io: CliIo): Promise<number> {
  return serve(argv, io.env, io.stderr);
}

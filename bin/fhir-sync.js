#!/usr/bin/env node
// The `fhir-sync` binary. Node 24 runs the TypeScript sources directly (type stripping), so
// this shim only hands the arguments to the dispatcher. Type stripping does not apply under
// node_modules: use the binary from a checkout (npm link or npx from the repo).
import process from 'node:process';
import { runCli } from '../src/cli/main.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});

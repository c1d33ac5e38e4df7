#!/usr/bin/env node
/**
 * The `keytrail-witness` executable (see `commands.ts` for commands and exit codes).
 * @module
 */
import { runCli } from './commands.ts';

const stopSignal = new Promise<void>((resolve) => {
  process.once('SIGINT', () => {
    resolve();
  });
  process.once('SIGTERM', () => {
    resolve();
  });
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stopSignal,
});

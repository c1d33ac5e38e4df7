#!/usr/bin/env node
/**
 * The `keytrail-audit` executable: installs the native crypto backend, runs one command and
 * exits with its code (0 all holds, 1 misbehaviour found, 2 usage or network error).
 * @module
 */
import { installNodeCrypto } from '@keytrail/server-kit';
import { runCli } from './commands.ts';

installNodeCrypto();
const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  // First Ctrl-C: stop after the current epoch and commit; second: leave at once (the state
  // on disk is consistent at every instant, only the last second of work is lost).
  if (++interrupts > 1) process.exit(2);
  controller.abort();
});
process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  signal: controller.signal,
});

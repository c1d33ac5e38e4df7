/**
 * `npm start`: runs the directory. Without DATABASE_URL it uses an embedded PGlite database in
 * DATA_DIR (default `.keytrail/directory`); keys are created on first start. Prints where it
 * listens, its verifier key, its VRF public key and a command that looks a key up.
 * @module
 */
import { mkdirSync } from 'node:fs';
import { openDb, installNodeCrypto, ConfigError } from '@keytrail/server-kit';
import { bytes } from '@keytrail/core';
import { loadConfig } from './config.ts';
import { buildApp } from './app.ts';
import { Directory } from './kt/directory.ts';
import { runMigrations } from './migrate-cli.ts';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  installNodeCrypto();
  if (!config.databaseUrl) mkdirSync(config.dataDir, { recursive: true });
  const db = await openDb(config.databaseUrl, config.dataDir, {
    max: 20,
    applicationName: 'keytrail-directory',
  });
  await runMigrations(db);
  const directory = await Directory.open({
    db,
    origin: config.origin,
    adminToken: config.adminToken,
    epochMs: config.epochMs,
    epochMaxUpdates: config.epochMaxUpdates,
    epochIdleMs: config.epochIdleMs,
    vrfWorkers: config.vrfWorkers,
    maxPending: config.maxPending,
    sequencer: config.sequencer,
  });
  const app = await buildApp({
    directory,
    rateLimit: config.rateLimit,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
  });
  directory.start();
  const address = await app.listen({ port: config.port, host: config.host });
  const base = address.replace('[::1]', 'localhost');
  const lines = [
    `Keytrail directory listening on ${base}  (database: ${config.databaseUrl ? 'PostgreSQL' : `PGlite in ${config.dataDir}`})`,
    `  verifier key:   ${directory.identity.logKey}`,
    `  VRF public key: ${bytes.toBase64(directory.identity.vrfPublicKey)}`,
    `  API docs:       ${base}/docs`,
    `  look a key up:  curl -s ${base}/v1/tenants/demo/accounts/alice`,
    config.adminToken
      ? ''
      : '  (set ADMIN_TOKEN to create tenants and accounts and publish device lists)',
  ];
  console.log(lines.filter(Boolean).join('\n'));
  const shutdown = (): void => {
    void (async () => {
      await app.close();
      await directory.close();
      await db.close();
      process.exit(0);
    })();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});

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
import { vrfAddonStatus } from './kt/vrf-prover.ts';
import { Directory } from './kt/directory.ts';
import { runMigrations } from './migrate-cli.ts';
import { KtDeviceDirectory } from './kt/device-directory.ts';
import { createWitnessCollector, attachLatePublisher, witnessConfig } from './witnessing/wiring.ts';
import { WitnessPolicyError } from './witnessing/policy.ts';
import { registerIdentity, readIdentityConfig, type IdentityHandle } from './identity/index.ts';

const DAY_MS = 24 * 3600 * 1000;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  // Read before anything starts, so that every configuration error is reported up front.
  const identityConfig = config.identity ? readIdentityConfig(process.env) : undefined;
  installNodeCrypto();
  if (!config.databaseUrl) mkdirSync(config.dataDir, { recursive: true });
  const db = await openDb(config.databaseUrl, config.dataDir, {
    max: 20,
    applicationName: 'keytrail-directory',
  });
  await runMigrations(db);
  const collector = await createWitnessCollector(db, config.witnessPolicy, {
    info: (obj, msg) => {
      if (config.logLevel !== 'silent') console.log(JSON.stringify({ ...obj, msg }));
    },
    warn: (obj, msg) => {
      console.warn(JSON.stringify({ level: 'warn', ...obj, msg }));
    },
    error: (obj, msg) => {
      console.error(JSON.stringify({ level: 'error', ...obj, msg }));
    },
  });
  const directory = await Directory.open({
    db,
    origin: config.origin,
    adminToken: config.adminToken,
    epochMs: config.epochMs,
    epochMaxUpdates: config.epochMaxUpdates,
    epochIdleMs: config.epochIdleMs,
    vrfWorkers: config.vrfWorkers,
    vrfAddon: config.vrfAddon,
    maxPending: config.maxPending,
    sequencer: config.sequencer,
    ...(collector ? { cosigner: collector } : {}),
  });
  if (collector) attachLatePublisher(collector, directory.store, directory.state);
  let identity: IdentityHandle | undefined;
  const app = await buildApp({
    directory,
    ...(collector
      ? { witnesses: witnessConfig(collector.policy), registries: [collector.registry] }
      : {}),
    rateLimit: config.rateLimit,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    plugins: identityConfig
      ? [
          async (scope) => {
            identity = await registerIdentity(scope, {
              db,
              config: identityConfig,
              devices: new KtDeviceDirectory(directory),
            });
          },
        ]
      : [],
  });
  directory.start();
  // Expired sign-in flows, SAML request ids and audit events past retention, once a day.
  const housekeeping = setInterval(() => {
    void identity?.housekeeping().catch((err: unknown) => {
      app.log.error({ err }, 'identity housekeeping failed');
    });
  }, DAY_MS);
  housekeeping.unref();
  const address = await app.listen({ port: config.port, host: config.host });
  const base = address.replace('[::1]', 'localhost');
  const addon = vrfAddonStatus();
  const prover =
    config.vrfAddon && addon.loaded
      ? 'native addon'
      : `sodium-native, at about half the rate (${config.vrfAddon ? addon.reason : 'KT_VRF_ADDON=off'})`;
  const lines = [
    `Keytrail directory listening on ${base}  (database: ${config.databaseUrl ? 'PostgreSQL' : `PGlite in ${config.dataDir}`})`,
    `  verifier key:   ${directory.identity.logKey}`,
    `  VRF public key: ${bytes.toBase64(directory.identity.vrfPublicKey)}`,
    `  VRF prover:     ${prover}`,
    `  API docs:       ${base}/docs`,
    `  look a key up:  curl -s ${base}/v1/tenants/demo/accounts/alice`,
    collector
      ? `  witnesses:      ${String(collector.policy.witnesses.length)} from ${config.witnessPolicy ?? ''}`
      : '  witnesses:      none (set WITNESS_POLICY to a tlog-policy file to collect cosignatures)',
    identityConfig
      ? `  identity:       ${base}/identity (OIDC, SAML, TOTP, backup codes)`
      : '  identity:       off (set KT_PUBLIC_URL and KT_IDENTITY_DATA_KEY to enable sign-in)',
    config.adminToken
      ? ''
      : '  (set ADMIN_TOKEN to create tenants and accounts and publish device lists)',
  ];
  console.log(lines.filter(Boolean).join('\n'));
  const shutdown = (): void => {
    void (async () => {
      clearInterval(housekeeping);
      await app.close();
      await directory.close();
      await collector?.close();
      await db.close();
      process.exit(0);
    })();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  // Configuration mistakes get their message alone; anything else is a bug and keeps its stack.
  const known = err instanceof ConfigError || err instanceof WitnessPolicyError;
  console.error(known ? err.message : err);
  process.exit(1);
});

/**
 * Starting the witness: open the database (PostgreSQL, or PGlite without `DATABASE_URL`),
 * apply `migrations/witness/`, load or create the key, apply the followed-logs file, then
 * listen. `buildApp` in `app.ts` does everything else.
 * @module
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { installNodeCrypto, migrate, openDb, type Db } from '@keytrail/server-kit';
import { buildApp } from './app.ts';
import type { WitnessConfig } from './config.ts';
import { openWitnessKey } from './key.ts';
import { parseLogList } from './log-list.ts';
import { PgWitnessStore, type AddLogResult } from './store.ts';

/** Opens and migrates the witness database. */
export async function openWitnessDb(config: WitnessConfig): Promise<Db> {
  if (!config.databaseUrl) await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const db = await openDb(config.databaseUrl, join(config.dataDir, 'pglite'), {
    applicationName: 'keytrail-witness',
    max: 16,
  });
  try {
    await migrate(db, 'witness');
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}

/** Applies the followed-logs file: new origins and new keys are added, nothing is removed. */
export async function applyLogsFile(
  store: PgWitnessStore,
  path: string,
): Promise<{ origin: string; result: AddLogResult }[]> {
  const logs = parseLogList(await readFile(path, 'utf8'));
  const out: { origin: string; result: AddLogResult }[] = [];
  for (const log of logs) out.push({ origin: log.origin, result: await store.addLog(log) });
  return out;
}

/** A running witness. */
export interface RunningWitness {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly vkey: string;
  close(): Promise<void>;
}

/** Starts the witness as configured. */
export async function startWitness(config: WitnessConfig): Promise<RunningWitness> {
  installNodeCrypto();
  const { key, created } = await openWitnessKey(config);
  const db = await openWitnessDb(config);
  try {
    const store = new PgWitnessStore(db);
    const applied = config.logsFile ? await applyLogsFile(store, config.logsFile) : [];
    const app = await buildApp({
      store,
      db,
      key,
      prefix: config.prefix,
      trustProxy: config.trustProxy,
      maxInFlight: config.maxInFlight,
      rateLimit:
        config.rateLimitPerMinute === 0
          ? false
          : { max: config.rateLimitPerMinute, timeWindowMs: 60_000 },
      logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    });
    if (created) app.log.info({ keyFile: config.keyFile }, 'created a new witness key');
    for (const a of applied) {
      if (a.result.created || a.result.addedKeys.length > 0) {
        app.log.info({ origin: a.origin, addedKeys: a.result.addedKeys.length }, 'following log');
      }
    }
    const url = await app.listen({ host: config.host, port: config.port });
    app.log.info({ vkey: key.vkey }, 'witness ready');
    return {
      app,
      url,
      vkey: key.vkey,
      async close() {
        await app.close();
        await db.close();
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

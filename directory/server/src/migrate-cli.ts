/**
 * `npm run migrate`: applies the directory's migrations, then the identity service's and the
 * witness collector's, to DATABASE_URL or the embedded database in DATA_DIR.
 * @module
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openDb, migrate, MIGRATIONS_ROOT, ConfigError } from '@keytrail/server-kit';
import { loadConfig } from './config.ts';

/** Applies every pending migration; returns what was applied per service. */
export async function runMigrations(
  db: Parameters<typeof migrate>[0],
): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = { directory: await migrate(db, 'directory') };
  for (const service of ['identity', 'witnessing']) {
    if (existsSync(join(MIGRATIONS_ROOT, service))) out[service] = await migrate(db, service);
  }
  return out;
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const db = await openDb(config.databaseUrl, config.dataDir);
  try {
    const applied = await runMigrations(db);
    for (const [service, versions] of Object.entries(applied)) {
      console.log(
        `${service}: ${versions.length === 0 ? 'up to date' : `applied ${versions.join(', ')}`}`,
      );
    }
  } finally {
    await db.close();
  }
}

if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(resolve(process.argv[1])).href
) {
  main().catch((err: unknown) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  });
}

/**
 * Test support: a fresh PostgreSQL database per test file on the server named by
 * `DATABASE_URL` (default: the machine's server on 127.0.0.1:5432, user postgres).
 * @module
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPg, type Db } from './db.ts';
import { migrate } from './migrate.ts';

/** The server tests use. */
export const TEST_SERVER_URL: string =
  process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database made for one test file. */
export interface TestDatabase {
  readonly url: string;
  readonly db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** Creates an empty database named after `label`, applies the services' migrations. */
export async function createTestDatabase(
  label: string,
  services: readonly string[] = [],
): Promise<TestDatabase> {
  const name = `kt_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_SERVER_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(TEST_SERVER_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = openPg(url, { max: 10, applicationName: `test-${label}` });
  for (const s of services) await migrate(db, s);
  return {
    url,
    db,
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: TEST_SERVER_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * One database interface over PostgreSQL (`pg`) and embedded PGlite, so every service runs on
 * a real PostgreSQL server in production and tests, and on PGlite for a newcomer's first run.
 *
 * Both drivers return `int8` as a JavaScript number (tree sizes and epochs never pass 2^53; pg
 * throws on a larger value, PGlite returns a bigint), `bytea` as `Uint8Array` and `timestamptz`
 * as `Date`.
 * @module
 */
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';

/* eslint-disable @typescript-eslint/no-unnecessary-type-parameters -- row types are the caller's statement, as in pg */

/** Result of one statement. */
export interface QueryResult<R> {
  readonly rows: R[];
  /** Rows changed by INSERT/UPDATE/DELETE, or returned by SELECT. */
  readonly rowCount: number;
}

/** Something that runs parameterised SQL. */
export interface Queryable {
  /** `R` describes the rows the statement returns; the caller states it, as with `pg`. */
  readonly query: <R extends object = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ) => Promise<QueryResult<R>>;
}

/** Transaction isolation levels. */
export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

/** A database: a pool of sessions (pg) or one embedded session (PGlite). */
export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, isolation?: Isolation): Promise<T>;
  /** Runs `fn` on one dedicated session, for session-level advisory locks and LISTEN. */
  withSession<T>(fn: (session: Queryable) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(script: string): Promise<void>;
  close(): Promise<void>;
}

const INT8_OID = 20;
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${text} exceeds 2^53`);
  return n;
}

function prepareParams(params: readonly unknown[] | undefined): unknown[] | undefined {
  if (!params) return undefined;
  return params.map((p) => {
    if (p instanceof Uint8Array && !Buffer.isBuffer(p)) {
      return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    }
    if (typeof p === 'bigint') return p.toString();
    return p;
  });
}

const pgTypes = {
  getTypeParser(oid: number, format?: string): (text: string) => unknown {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return (pg.types.getTypeParser as (o: number, f?: string) => (t: string) => unknown)(
      oid,
      format,
    );
  },
};

function wrapPg(client: pg.ClientBase | pg.Pool): Queryable {
  return {
    async query<R extends object>(text: string, params?: readonly unknown[]) {
      const config: pg.QueryConfig = { text, types: pgTypes };
      const values = prepareParams(params);
      if (values) config.values = values;
      const r: pg.QueryResult<R> = await client.query<R>(config);
      return { rows: r.rows, rowCount: r.rowCount ?? r.rows.length };
    },
  };
}

/** Options for {@link openPg}. */
export interface PgOptions {
  /** Pool size; default 10. */
  readonly max?: number;
  /** Application name shown in pg_stat_activity. */
  readonly applicationName?: string;
}

/** Opens a pool on a PostgreSQL server. */
export function openPg(connectionString: string, options: PgOptions = {}): Db {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'keytrail',
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const base = wrapPg(pool);
  return {
    kind: 'pg',
    query: base.query,
    async transaction(fn, isolation) {
      const client = await pool.connect();
      try {
        await client.query(
          isolation ? `BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}` : 'BEGIN',
        );
        const result = await fn(wrapPg(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async withSession(fn) {
      const client = await pool.connect();
      let broken = false;
      try {
        return await fn(wrapPg(client));
      } catch (err) {
        broken = true;
        throw err;
      } finally {
        // A session may hold advisory locks: never hand it back to the pool dirty.
        client.release(broken ? true : undefined);
      }
    },
    async exec(script) {
      await pool.query(script);
    },
    async close() {
      await pool.end();
    },
  };
}

/** Opens (creating if needed) an embedded PGlite database in `dataDir`, or in memory. */
export async function openPglite(dataDir?: string): Promise<Db> {
  const { PGlite: PGliteClass } = await import('@electric-sql/pglite');
  const lite: PGlite = new PGliteClass(dataDir, { parsers: { [INT8_OID]: parseInt8 } });
  await lite.waitReady;
  const wrap = (q: Pick<PGlite, 'query'>): Queryable => ({
    async query<R extends object>(text: string, params?: readonly unknown[]) {
      const r = await q.query<R>(text, params ? [...params] : undefined);
      return { rows: r.rows, rowCount: Math.max(r.affectedRows ?? 0, r.rows.length) };
    },
  });
  const base = wrap(lite);
  return {
    kind: 'pglite',
    query: base.query,
    async transaction(fn, isolation) {
      return lite.transaction(async (tx) => {
        if (isolation) await tx.query(`SET TRANSACTION ISOLATION LEVEL ${isolation.toUpperCase()}`);
        return fn(wrap(tx));
      });
    },
    // PGlite is a single session already.
    withSession: (fn) => fn(base),
    async exec(script) {
      await lite.exec(script);
    },
    async close() {
      await lite.close();
    },
  };
}

/** Opens PostgreSQL when `databaseUrl` is set, else PGlite in `dataDir`. */
export async function openDb(
  databaseUrl: string | undefined,
  dataDir: string,
  options?: PgOptions,
): Promise<Db> {
  return databaseUrl ? openPg(databaseUrl, options) : openPglite(dataDir);
}

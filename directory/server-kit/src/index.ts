/**
 * `@keytrail/server-kit`: plumbing shared by Keytrail's services (directory, witness, relay).
 * @module
 */
export {
  openDb,
  openPg,
  openPglite,
  type Db,
  type Queryable,
  type QueryResult,
  type Isolation,
  type PgOptions,
} from './db.ts';
export { migrate, loadMigrations, splitSql, MIGRATIONS_ROOT, type Migration } from './migrate.ts';
export { EnvReader, ConfigError } from './config.ts';
export {
  HttpError,
  installErrorHandler,
  statusForKtError,
  ERROR_BODY_SCHEMA,
} from './http-errors.ts';
export { NODE_CRYPTO_BACKEND, installNodeCrypto } from './node-crypto.ts';

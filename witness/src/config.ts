/**
 * Witness configuration from environment variables (one error listing every bad value).
 *
 * | Variable | Default | Meaning |
 * |---|---|---|
 * | `DATABASE_URL` | — | PostgreSQL URL; without it, embedded PGlite in `<data dir>/pglite` |
 * | `KEYTRAIL_WITNESS_DATA_DIR` | `.keytrail/witness` | PGlite data and the default key file |
 * | `KEYTRAIL_WITNESS_KEY_FILE` | `<data dir>/witness.key` | the Ed25519 key (mode 0600) |
 * | `KEYTRAIL_WITNESS_NAME` | `<hostname>/witness` | cosigner name, used when creating the key |
 * | `KEYTRAIL_WITNESS_LOGS` | — | followed-logs file (`logs/v0`), applied at start |
 * | `KEYTRAIL_WITNESS_HOST` / `_PORT` | `127.0.0.1` / `7380` | listen address |
 * | `KEYTRAIL_WITNESS_PREFIX` | — | path prefix of the witness API, e.g. `/witness` |
 * | `KEYTRAIL_WITNESS_RATE_LIMIT` | `600` | requests per minute per client address; 0 = off |
 * | `KEYTRAIL_WITNESS_MAX_INFLIGHT` | `1024` | concurrent add-checkpoint requests before 503 |
 * | `KEYTRAIL_WITNESS_TRUST_PROXY` | `false` | use `X-Forwarded-For` for the client address |
 * | `KEYTRAIL_WITNESS_LOG_LEVEL` | `info` | `fatal`…`trace`, or `silent` |
 * @module
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EnvReader } from '@keytrail/server-kit';
import { isValidKeyName } from './key.ts';

/** Log levels accepted by `KEYTRAIL_WITNESS_LOG_LEVEL`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The witness's configuration. */
export interface WitnessConfig {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly keyFile: string;
  /** The explicitly configured name, if any (the key file's name wins otherwise). */
  readonly name: string | undefined;
  /** The name used when a key has to be created. */
  readonly defaultName: string;
  readonly logsFile: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly prefix: string;
  readonly rateLimitPerMinute: number;
  readonly maxInFlight: number;
  readonly trustProxy: boolean;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

/**
 * Reads the configuration.
 * @throws ConfigError listing every invalid variable.
 */
export function readConfig(env: Readonly<Record<string, string | undefined>>): WitnessConfig {
  const r = new EnvReader(env);
  const databaseUrl = r.url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const dataDir = r.string('KEYTRAIL_WITNESS_DATA_DIR', join('.keytrail', 'witness'));
  const keyFile = r.string('KEYTRAIL_WITNESS_KEY_FILE', join(dataDir, 'witness.key'));
  const name = r.string('KEYTRAIL_WITNESS_NAME');
  if (name !== undefined && !isValidKeyName(name)) {
    r.problem('KEYTRAIL_WITNESS_NAME: must be non-empty, without spaces or "+"');
  }
  const prefix = r.string('KEYTRAIL_WITNESS_PREFIX', '');
  if (prefix !== '' && !/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix)) {
    r.problem('KEYTRAIL_WITNESS_PREFIX: expected a path such as /witness (no trailing slash)');
  }
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'localhost';
  const config: WitnessConfig = {
    databaseUrl,
    dataDir,
    keyFile,
    name,
    defaultName: name ?? `${host}/witness`,
    logsFile: r.string('KEYTRAIL_WITNESS_LOGS'),
    host: r.string('KEYTRAIL_WITNESS_HOST', '127.0.0.1'),
    port: r.int('KEYTRAIL_WITNESS_PORT', 7380, 0, 65535),
    prefix,
    rateLimitPerMinute: r.int('KEYTRAIL_WITNESS_RATE_LIMIT', 600, 0, 10_000_000),
    maxInFlight: r.int('KEYTRAIL_WITNESS_MAX_INFLIGHT', 1024, 1, 1_000_000),
    trustProxy: r.bool('KEYTRAIL_WITNESS_TRUST_PROXY', false),
    logLevel: r.oneOf('KEYTRAIL_WITNESS_LOG_LEVEL', LOG_LEVELS, 'info'),
  };
  r.done();
  return config;
}

/**
 * The directory's configuration, from environment variables only, with one clear error naming
 * every bad value (server-kit `EnvReader`).
 * @module
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { EnvReader } from '@keytrail/server-kit';

/** Everything the directory reads from its environment. */
export interface DirectoryConfig {
  /** TCP port (PORT, default 8787; 0 picks a free one). */
  readonly port: number;
  /** Listen address (HOST, default 127.0.0.1). */
  readonly host: string;
  /** PostgreSQL URL (DATABASE_URL); without it the embedded PGlite database in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Data folder of the embedded database (DATA_DIR, default `.keytrail/directory`). */
  readonly dataDir: string;
  /** Checkpoint origin (ORIGIN); fixed at first start, default `localhost/keytrail-directory`. */
  readonly origin: string | undefined;
  /** Longest time an update waits for its epoch (EPOCH_MS, default 1000). */
  readonly epochMs: number;
  /** An epoch closes early at this many pending updates (EPOCH_MAX_UPDATES, default 10000). */
  readonly epochMaxUpdates: number;
  /** An empty epoch is published after this long without one, for freshness (EPOCH_IDLE_MS, default 60000). */
  readonly epochIdleMs: number;
  /** Operator bearer token for admin grants (ADMIN_TOKEN, ≥ 16 characters); unset: no admin API. */
  readonly adminToken: string | undefined;
  /** Worker threads proving VRFs (VRF_WORKERS, default: the number of cores; 0: main thread). */
  readonly vrfWorkers: number;
  /** Prove with the native addon when it is built (KT_VRF_ADDON, default on). */
  readonly vrfAddon: boolean;
  /** Whether this process runs for the sequencer lock (SEQUENCER, default true). */
  readonly sequencer: boolean;
  /** Writes refused with 503 above this many pending updates (MAX_PENDING, default 200000). */
  readonly maxPending: number;
  /** Requests per minute per client address (RATE_LIMIT, default 60000). */
  readonly rateLimit: number;
  /** Pino log level (LOG_LEVEL, default info). */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** A C2SP tlog-policy file naming the witnesses and the quorum (WITNESS_POLICY). */
  readonly witnessPolicy: string | undefined;
  /** Whether the identity service runs (it needs KT_PUBLIC_URL and KT_IDENTITY_DATA_KEY). */
  readonly identity: boolean;
}

const ORIGIN_RE = /^[A-Za-z0-9][A-Za-z0-9.\-_/:]{0,199}$/;

/**
 * Reads the configuration.
 * @throws ConfigError naming every invalid variable.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): DirectoryConfig {
  const r = new EnvReader(env);
  const origin = r.string('ORIGIN');
  if (origin !== undefined && !ORIGIN_RE.test(origin)) {
    r.problem(
      'ORIGIN: expected a schemeless URL such as example.com/keytrail (letters, digits, . - _ / :)',
    );
  }
  const adminToken = r.string('ADMIN_TOKEN');
  if (adminToken !== undefined && (adminToken.length < 16 || /\s/.test(adminToken))) {
    r.problem('ADMIN_TOKEN: expected at least 16 characters without spaces');
  }
  const config: DirectoryConfig = {
    port: r.int('PORT', 8787, 0, 65535),
    host: r.string('HOST', '127.0.0.1'),
    databaseUrl: r.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: resolve(r.string('DATA_DIR', '.keytrail/directory')),
    origin,
    epochMs: r.int('EPOCH_MS', 1000, 10, 3_600_000),
    epochMaxUpdates: r.int('EPOCH_MAX_UPDATES', 10_000, 1, 1_000_000),
    epochIdleMs: r.int('EPOCH_IDLE_MS', 60_000, 100, 86_400_000),
    adminToken,
    vrfWorkers: r.int('VRF_WORKERS', Math.min(availableParallelism(), 4), 0, 64),
    vrfAddon: r.bool('KT_VRF_ADDON', true),
    sequencer: r.bool('SEQUENCER', true),
    maxPending: r.int('MAX_PENDING', 200_000, 1, 100_000_000),
    rateLimit: r.int('RATE_LIMIT', 60_000, 1, 10_000_000),
    witnessPolicy: r.string('WITNESS_POLICY'),
    identity: r.string('KT_PUBLIC_URL') !== undefined,
    logLevel: r.oneOf(
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'info',
    ),
  };
  r.done();
  return config;
}

/**
 * The `keytrail-witness` command line: `serve` (default), `key`, `add-log`, `list-logs`,
 * `evidence`, `help`. Configuration comes from the environment (see `config.ts`).
 *
 * Exit codes: 0 success; 1 the command failed (configuration, key file, database); 2 usage
 * error (unknown command or option, missing or bad argument).
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '@keytrail/server-kit';
import { bytes, note } from '@keytrail/core';
import { readConfig, type WitnessConfig } from './config.ts';
import { WitnessError } from './errors.ts';
import { openWitnessKey } from './key.ts';
import { keyName } from './log-list.ts';
import type { PgWitnessStore } from './store.ts';

/** Where the CLI writes, and what it reads. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Resolves when the process is asked to stop (serve only). */
  readonly stopSignal?: Promise<void>;
}

const PROG = 'keytrail-witness';

const MAIN_HELP = `Usage: ${PROG} [command] [options]

A C2SP tlog-witness: verifies checkpoints of the transparency logs it follows
and cosigns them (cosignature/v1) when they are consistent with what it saw.

Commands:
  serve       Run the witness HTTP server (the default command)
  key         Print the witness's cosignature/v1 verifier key
  add-log     Follow a log, or add a key to a log already followed
  list-logs   List the followed logs and the latest size cosigned for each
  evidence    List equivocation evidence (signed checkpoints that contradict)
  help        Show the help of a command

Run '${PROG} <command> --help' for the options of a command.
Configuration is read from environment variables: '${PROG} help serve'.
`;

const HELP: Record<string, string> = {
  serve: `Usage: ${PROG} serve

Runs the witness: POST /add-checkpoint (C2SP tlog-witness v1.0.0),
GET /<hex sha256(origin)>/checkpoint, GET /evidence, /healthz, /metrics.

Environment:
  DATABASE_URL                   PostgreSQL URL; without it, embedded PGlite in
                                 <data dir>/pglite (one process at a time)
  KEYTRAIL_WITNESS_DATA_DIR      data directory (default .keytrail/witness)
  KEYTRAIL_WITNESS_KEY_FILE      Ed25519 key file, mode 0600, created on first
                                 start (default <data dir>/witness.key)
  KEYTRAIL_WITNESS_NAME          cosigner name for a new key (default
                                 <hostname>/witness); if set, must match the key
  KEYTRAIL_WITNESS_LOGS          followed-logs file (logs/v0 format), applied at
                                 start; logs and keys are added, never removed
  KEYTRAIL_WITNESS_HOST, _PORT   listen address (default 127.0.0.1:7380)
  KEYTRAIL_WITNESS_PREFIX        path prefix of the witness API (default none)
  KEYTRAIL_WITNESS_RATE_LIMIT    requests per minute per client; 0 = off (600)
  KEYTRAIL_WITNESS_MAX_INFLIGHT  concurrent add-checkpoint requests (1024)
  KEYTRAIL_WITNESS_TRUST_PROXY   trust X-Forwarded-For (false)
  KEYTRAIL_WITNESS_LOG_LEVEL     fatal|error|warn|info|debug|trace|silent (info)
`,
  key: `Usage: ${PROG} key

Prints the witness's cosignature/v1 verifier key (name+keyid+base64), the
string logs and clients configure to verify its cosignatures. Creates the key
file first if it does not exist (see '${PROG} help serve').
`,
  'add-log': `Usage: ${PROG} add-log --key VKEY [--key VKEY...] [--origin ORIGIN]
                        [--qpd N] [--contact TEXT]

Follows a log, or adds keys to a log already followed. Logs and keys are never
removed: forgetting a log could let the witness cosign a split view.

Options:
  --key VKEY        the log's Ed25519 signed-note verifier key (repeatable)
  --origin ORIGIN   the log's checkpoint origin line (default: the key name)
  --qpd N           checkpoints per day the log may submit (informational)
  --contact TEXT    how to reach the log operator (informational)

With PGlite (no DATABASE_URL), stop the server first. A running server sees
new logs within a second.
`,
  'list-logs': `Usage: ${PROG} list-logs

Prints one JSON object per followed log: origin, size, root (base64), the
timestamp of the latest cosignature (or null) and the trusted keys.
`,
  evidence: `Usage: ${PROG} evidence [--after ID] [--limit N]

Prints one JSON object per piece of equivocation evidence, oldest first:
validly signed checkpoints that contradict the checkpoint the witness had
cosigned (kind same_size_fork), or whose consistency proof from it failed
(kind consistency_proof_failed), with both signed notes and the proof.

Options:
  --after ID   only evidence with an id greater than ID (default 0)
  --limit N    at most N records (default 1000)
`,
  help: `Usage: ${PROG} help [command]

Shows the help of a command, or the list of commands.
`,
};

class UsageError extends Error {}

function parse(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function wholeNumber(v: unknown, flag: string, min: number, max: number): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw new UsageError(`${flag} must be a whole number from ${String(min)} to ${String(max)}`);
  }
  return Number(s);
}

/** Runs the CLI; returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  let command = first ?? 'serve';
  let args = rest;
  if (command === '--help' || command === '-h') {
    io.stdout(MAIN_HELP);
    return 0;
  }
  if (command.startsWith('-')) {
    command = 'serve';
    args = [...argv];
  }
  try {
    switch (command) {
      case 'help': {
        const topic = args[0];
        if (topic === undefined) io.stdout(MAIN_HELP);
        else if (HELP[topic] !== undefined) io.stdout(HELP[topic]);
        else throw new UsageError(`unknown command "${topic}"`);
        return 0;
      }
      case 'serve':
        return await serve(args, io);
      case 'key':
        return await key(args, io);
      case 'add-log':
        return await addLog(args, io);
      case 'list-logs':
        return await listLogs(args, io);
      case 'evidence':
        return await evidence(args, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${PROG}: ${err.message}\nRun '${PROG} --help' for usage.\n`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof WitnessError) {
      io.stderr(`${PROG}: ${err.message}\n`);
      return 1;
    }
    io.stderr(`${PROG}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

function helpRequested(command: string, values: Record<string, unknown>, io: CliIo): boolean {
  if (values['help'] !== true) return false;
  io.stdout(HELP[command] ?? MAIN_HELP);
  return true;
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {});
  if (helpRequested('serve', values, io)) return 0;
  const config = readConfig(io.env);
  // The server and database modules load only for the commands that need them.
  const { startWitness } = await import('./main.ts');
  const running = await startWitness(config);
  io.stderr(`${PROG}: listening on ${running.url} as ${running.vkey}\n`);
  await (io.stopSignal ?? new Promise<void>(() => undefined));
  await running.close();
  return 0;
}

async function key(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {});
  if (helpRequested('key', values, io)) return 0;
  const config = readConfig(io.env);
  const loaded = await openWitnessKey(config);
  if (loaded.created) io.stderr(`${PROG}: created a new key in ${config.keyFile}\n`);
  io.stdout(`${loaded.key.vkey}\n`);
  return 0;
}

async function withStore<T>(
  config: WitnessConfig,
  fn: (store: PgWitnessStore) => Promise<T>,
): Promise<T> {
  const [{ openWitnessDb }, { PgWitnessStore }] = await Promise.all([
    import('./main.ts'),
    import('./store.ts'),
  ]);
  const db = await openWitnessDb(config);
  try {
    return await fn(new PgWitnessStore(db));
  } finally {
    await db.close();
  }
}

async function addLog(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    key: { type: 'string', multiple: true },
    origin: { type: 'string' },
    qpd: { type: 'string' },
    contact: { type: 'string' },
  });
  if (helpRequested('add-log', values, io)) return 0;
  const keys = Array.isArray(values['key'])
    ? values['key'].filter((k) => typeof k === 'string')
    : [];
  if (keys.length === 0) throw new UsageError('add-log needs at least one --key VKEY');
  for (const k of keys) {
    try {
      note.parseVerifierKey(k);
    } catch {
      throw new UsageError(`--key ${JSON.stringify(k)} is not an Ed25519 signed-note verifier key`);
    }
  }
  const origin = str(values['origin']) ?? keyName(keys[0] ?? '');
  if (origin === '' || /\s/.test(origin)) {
    throw new UsageError('--origin must be non-empty, without spaces');
  }
  const qpd = wholeNumber(values['qpd'], '--qpd', 1, 2 ** 31 - 1);
  const contact = str(values['contact']);
  const config = readConfig(io.env);
  const result = await withStore(config, (store) =>
    store.addLog({ origin, vkeys: keys, qpd: qpd ?? null, contact: contact ?? null }),
  );
  if (result.created) {
    io.stdout(`following ${origin} with ${String(result.addedKeys.length)} key(s)\n`);
  } else if (result.addedKeys.length > 0) {
    io.stdout(`added ${String(result.addedKeys.length)} key(s) to ${origin}\n`);
  } else {
    io.stdout(`${origin} already followed with these keys; nothing changed\n`);
  }
  return 0;
}

async function listLogs(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {});
  if (helpRequested('list-logs', values, io)) return 0;
  const config = readConfig(io.env);
  const logs = await withStore(config, (store) => store.listLogs());
  for (const l of logs) {
    io.stdout(
      `${JSON.stringify({
        origin: l.origin,
        size: l.size,
        root: bytes.toBase64(l.root),
        cosignedAt: l.cosignedAt,
        keys: l.vkeys,
      })}\n`,
    );
  }
  return 0;
}

async function evidence(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { after: { type: 'string' }, limit: { type: 'string' } });
  if (helpRequested('evidence', values, io)) return 0;
  const after = wholeNumber(values['after'], '--after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const limit = wholeNumber(values['limit'], '--limit', 1, 100_000) ?? 1000;
  const config = readConfig(io.env);
  const list = await withStore(config, (store) => store.listEvidence(after, limit));
  const { evidenceJson } = await import('./app.ts');
  for (const e of list) io.stdout(`${JSON.stringify(evidenceJson(e))}\n`);
  return 0;
}

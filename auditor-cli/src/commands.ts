/**
 * The commands of `keytrail-audit` and their argument parsing (`node:util` parseArgs), human and
 * `--json` output, and exit codes: 0 when everything checked holds, 1 when misbehaviour is found
 * (or a checkpoint or evidence check fails), 2 for usage, network, download or local-state
 * errors. Every command takes `--help` and `--json`; with `--json`, stdout carries exactly one
 * JSON document, errors included.
 * @module
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KtError } from '@keytrail/core';
import { AuditError, EXIT_ERROR, EXIT_MISBEHAVIOUR, EXIT_OK, MisbehaviourError } from './errors.ts';
import { CHECKS, type Finding } from './findings.ts';
import { HttpDirectorySource } from './directory-source.ts';
import { StateStore, DEFAULT_STATE_DIR } from './state-store.ts';
import { parseTrustFile } from './trust.ts';
import { sync } from './sync.ts';
import { progressFor } from './progress.ts';
import { verifyAnyCheckpoint } from './any-checkpoint.ts';
import { parseEvidence, verifyEvidence } from './evidence.ts';
import { lookupCommand, monitorCommand } from './account-commands.ts';

/** A writable stream, as process.stdout is. */
export interface OutStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

/** Everything the CLI touches of its process, injected so that tests can run it in-process. */
export interface CliIo {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly signal?: AbortSignal;
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command's `run` gets. */
export interface CommandContext {
  readonly io: CliIo;
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly json: boolean;
  /** The state directory (absolute). */
  readonly stateDir: string;
  /** The state directory as the user wrote it, for messages. */
  readonly stateArg: string;
  /** Current POSIX time (seconds); `KEYTRAIL_AUDIT_NOW` overrides it for reproducible runs. */
  now(): number;
  out(text: string): void;
  emit(value: unknown): void;
}

/** One command. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly help: string;
  readonly options: Options;
  readonly positionals: readonly [min: number, max: number];
  run(ctx: CommandContext): Promise<number>;
}

const COMMON: Options = {
  state: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_HELP = `Common options:
  --state DIR   audit state directory (default ${DEFAULT_STATE_DIR}/)
  --json        print one JSON document on stdout
  -h, --help    show this help

Exit codes: 0 all checks hold, 1 misbehaviour found, 2 usage, network or state error.`;

function str(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

function strs(v: Values, k: string): string[] {
  const x = v[k];
  return Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : [];
}

function intOption(v: Values, k: string, min: number): number | undefined {
  const s = str(v, k);
  if (s === undefined) return undefined;
  if (!/^[0-9]+$/.test(s) || Number(s) < min || !Number.isSafeInteger(Number(s))) {
    throw new AuditError('ERR_AUDIT_USAGE', `--${k} must be an integer ≥ ${min}`);
  }
  return Number(s);
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

function findingJson(f: Finding): Record<string, unknown> {
  return {
    check: f.check,
    epoch: f.epoch,
    message: f.message,
    what: CHECKS[f.check].what,
    attributable: CHECKS[f.check].attributable,
    evidenceFile: f.evidenceFile,
  };
}

function findingText(f: Finding, shownPath: string): string {
  const c = CHECKS[f.check];
  return [
    'MISBEHAVIOUR FOUND',
    `  check       ${f.check}: ${c.what}`,
    `  epoch       ${f.epoch === null ? '-' : String(f.epoch)}`,
    `  finding     ${f.message}`,
    `  evidence    ${shownPath}`,
    `  signed      ${c.attributable ? 'yes: the evidence carries the directory signature' : 'no: the evidence records what the directory served'}`,
    `  re-check    keytrail-audit verify-evidence ${shownPath}`,
    '',
  ].join('\n');
}

const initCommand: Command = {
  name: 'init',
  summary: 'pin a directory and its trust file',
  usage: 'init --url URL --trust FILE [--force]',
  help: `Creates the audit state directory for the directory at URL, pinning the trust file:
  {"origin": "...", "logKey": "<vkey, Ed25519 0x01>", "vrfPublicKey": "<base64>",
   "witnesses": ["<cosignature/v1 vkey, 0x04>", ...], "quorum": K, "maxAgeSeconds": S}

Options:
  --url URL     the directory's base URL
  --trust FILE  the trust file
  --force       start over in an existing state directory`,
  options: { url: { type: 'string' }, trust: { type: 'string' }, force: { type: 'boolean' } },
  positionals: [0, 0],
  async run(ctx) {
    const url = str(ctx.values, 'url');
    const trustPath = str(ctx.values, 'trust');
    if (url === undefined || trustPath === undefined) {
      throw new AuditError('ERR_AUDIT_USAGE', '--url and --trust are required');
    }
    const source = new HttpDirectorySource(url);
    let text: string;
    try {
      text = await readFile(resolve(ctx.io.cwd, trustPath), 'utf8');
    } catch (e) {
      throw new AuditError('ERR_AUDIT_TRUST_FILE', `cannot read trust file ${trustPath}`, {
        cause: e,
      });
    }
    const trust = parseTrustFile(text);
    await StateStore.init(ctx.stateDir, { url: source.name, trust }, ctx.values.force === true);
    if (ctx.json) {
      ctx.emit({ ok: true, state: ctx.stateArg, url: source.name, trust });
    } else {
      ctx.out(
        [
          `initialised ${ctx.stateArg} for ${source.name}`,
          `  origin      ${trust.origin}`,
          `  log key     ${trust.logKey}`,
          `  witnesses   ${trust.witnesses.length}, quorum ${trust.quorum}, max age ${trust.maxAgeSeconds} s`,
          'next: keytrail-audit sync',
          '',
        ].join('\n'),
      );
    }
    return EXIT_OK;
  },
};

const syncCommand: Command = {
  name: 'sync',
  summary: 'fetch and verify new checkpoints, epoch records and inserts',
  usage: 'sync [--timeout MS] [--threads N] [--quiet]',
  help: `Fetches the latest checkpoint, checks the directory signature, the witness quorum and its
consistency with every checkpoint accepted before, downloads the new epoch records and replays
each epoch's inserts into the auditor's own prefix tree. Stops at the first misbehaviour and
saves its evidence under DIR/evidence/. Resumable: an interrupted sync continues where it left.

Options:
  --timeout MS  per-request timeout (default 30000)
  --threads N   hashing worker threads for large replays (default: CPU cores - 1, at most 3;
                0 for none)
  --quiet       no progress bar (it is shown only when stderr is a terminal)`,
  options: { timeout: { type: 'string' }, quiet: { type: 'boolean' }, threads: { type: 'string' } },
  positionals: [0, 0],
  async run(ctx) {
    const timeoutMs = intOption(ctx.values, 'timeout', 1);
    const threads = intOption(ctx.values, 'threads', 0);
    const store = await StateStore.open(ctx.stateDir);
    try {
      const source = new HttpDirectorySource(store.config.url, {
        ...(timeoutMs ? { timeoutMs } : {}),
        ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
      });
      const r = await sync({
        store,
        source,
        now: () => ctx.now(),
        progress: progressFor(ctx.io.stderr, ctx.values.quiet !== true),
        ...(threads !== undefined ? { threads } : {}),
        ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
      });
      if (ctx.json) {
        ctx.emit({ ok: true, ...r });
      } else {
        ctx.out(
          [
            `checkpoint  ${r.origin} size ${r.size} root ${r.root}${r.newCheckpoint ? ' (new)' : ''}`,
            `witnesses   ${r.cosigners.length === 0 ? 'none required' : r.cosigners.map((c) => `${c.name} at ${iso(c.timestamp)}`).join(', ')}`,
            `replayed    ${r.epochsReplayed} epochs, ${r.insertsReplayed} inserts in this run; ${r.totalEpochs} epochs, ${r.totalInserts} inserts in all`,
            `prefix root ${r.prefixRoot ?? '-'}`,
            'all checks hold',
            '',
          ].join('\n'),
        );
      }
      return EXIT_OK;
    } finally {
      await store.close();
    }
  },
};

const statusCommand: Command = {
  name: 'status',
  summary: 'show what has been verified so far',
  usage: 'status',
  help: `Shows the pinned directory, the latest accepted checkpoint, how far the replay got and any
findings saved under DIR/evidence/ (then exits 1).`,
  options: {},
  positionals: [0, 0],
  async run(ctx) {
    const config = await StateStore.readConfig(ctx.stateDir);
    const state = await StateStore.readState(ctx.stateDir);
    let cp: { origin: string; size: number; root: string } | null = null;
    if (state.checkpoint !== null) {
      const lines = state.checkpoint.split('\n');
      cp = { origin: lines[0] ?? '', size: Number(lines[1]), root: lines[2] ?? '' };
    }
    let evidence: string[] = [];
    try {
      evidence = (await readdir(join(ctx.stateDir, 'evidence')))
        .filter((f) => f.endsWith('.json'))
        .sort();
    } catch {
      // no findings yet
    }
    const shown = evidence.map((f) => join(ctx.stateArg, 'evidence', f));
    if (ctx.json) {
      ctx.emit({
        ok: evidence.length === 0,
        url: config.url,
        origin: config.trust.origin,
        checkpoint: cp,
        checkpointsAccepted: state.checkpointsCount,
        epochsVerified: state.records,
        epochsReplayed: state.replayed,
        inserts: state.leaves,
        prefixRoot: state.prefixRoot,
        witnessTimes: state.witnessTimes,
        findings: shown,
      });
    } else {
      ctx.out(
        [
          `directory   ${config.url}`,
          `origin      ${config.trust.origin}`,
          `checkpoint  ${cp ? `size ${cp.size} root ${cp.root} (${state.checkpointsCount} accepted)` : 'none yet (run sync)'}`,
          `replayed    ${state.replayed}/${state.records} epochs, ${state.leaves} inserts`,
          `prefix root ${state.prefixRoot ?? '-'}`,
          `findings    ${shown.length === 0 ? 'none' : shown.join('\n            ')}`,
          '',
        ].join('\n'),
      );
    }
    return evidence.length === 0 ? EXIT_OK : EXIT_MISBEHAVIOUR;
  },
};

const verifyCheckpointCommand: Command = {
  name: 'verify-checkpoint',
  summary: 'verify any C2SP checkpoint note',
  usage: 'verify-checkpoint FILE --key VKEY... [--witness VKEY... --quorum K --max-age S]',
  help: `Verifies a C2SP signed checkpoint (from Keytrail or any other log) in FILE ("-" for stdin):
at least one --key must have signed it, and with --witness, K of the witnesses (default: all)
must have cosigned it (cosignature/v1). Exits 1 if it does not verify.

Options:
  --key VKEY      log verifier key, Ed25519 (0x01) or ECDSA P-256 (0x02); repeatable
  --witness VKEY  witness key, cosignature/v1 (0x04) or Ed25519 (0x01); repeatable
  --quorum K      witnesses required (default: all given)
  --max-age S     cosignatures must be at most S seconds old`,
  options: {
    key: { type: 'string', multiple: true },
    witness: { type: 'string', multiple: true },
    quorum: { type: 'string' },
    'max-age': { type: 'string' },
  },
  positionals: [1, 1],
  async run(ctx) {
    const file = ctx.positionals[0] as string;
    const text = await readInput(ctx, file);
    const quorum = intOption(ctx.values, 'quorum', 0);
    const maxAge = intOption(ctx.values, 'max-age', 1);
    try {
      const r = verifyAnyCheckpoint(text, {
        keys: strs(ctx.values, 'key'),
        witnesses: strs(ctx.values, 'witness'),
        ...(quorum !== undefined ? { quorum } : {}),
        ...(maxAge !== undefined ? { maxAgeSeconds: maxAge, now: ctx.now() } : {}),
      });
      if (ctx.json) ctx.emit({ ok: true, ...r });
      else {
        ctx.out(
          [
            `verified    ${r.origin}`,
            `size        ${r.size}`,
            `root        ${r.root}`,
            ...r.extensions.map((x) => `extension   ${x}`),
            `signed by   ${r.signedBy.map((s) => `${s.name} (${s.keyId})`).join(', ')}`,
            ...(r.cosigners.length > 0
              ? [
                  `cosigned by ${r.cosigners.map((c) => `${c.name} (${c.keyId}) at ${iso(c.timestamp)}`).join('\n            ')}`,
                ]
              : []),
            ...(r.ignored > 0 ? [`ignored     ${r.ignored} signature(s) from other keys`] : []),
            ...r.notes.map((n) => `note        ${n}`),
            '',
          ].join('\n'),
        );
      }
      return EXIT_OK;
    } catch (e) {
      if (!(e instanceof KtError)) throw e;
      if (ctx.json) ctx.emit({ ok: false, error: { code: e.code, message: e.message } });
      else ctx.out(`NOT VERIFIED: ${e.code}: ${e.message}\n`);
      return EXIT_MISBEHAVIOUR;
    }
  },
};

const verifyEvidenceCommand: Command = {
  name: 'verify-evidence',
  summary: 're-check a saved finding from its evidence file alone',
  usage: 'verify-evidence FILE [--key VKEY]',
  help: `Re-runs the failed check of an evidence file written by sync, offline, from the signed
notes, records, proofs and inserts it holds. Exits 1 if the misbehaviour is confirmed, 0 if the
evidence does not show it.

Options:
  --key VKEY  the directory key to check signatures with (default: the one in the file)`,
  options: { key: { type: 'string' } },
  positionals: [1, 1],
  async run(ctx) {
    const file = ctx.positionals[0] as string;
    const ev = parseEvidence(await readInput(ctx, file));
    const key = str(ctx.values, 'key');
    const v = verifyEvidence(ev, key !== undefined ? { logKey: key } : {});
    if (ctx.json) ctx.emit({ ok: !v.confirmed, ...v });
    else {
      ctx.out(
        [
          `check       ${v.check}${v.epoch === null ? '' : ` (epoch ${v.epoch})`}: ${CHECKS[v.check].what}`,
          `key         ${v.logKey}${key === undefined ? ' (from the evidence file; pin your own with --key)' : ''}`,
          ...v.steps.map((s) => `  - ${s}`),
          v.confirmed
            ? `CONFIRMED${v.attributable ? ', signed by the directory' : ', as served (not signed by the directory)'}`
            : 'NOT CONFIRMED',
          '',
        ].join('\n'),
      );
    }
    return v.confirmed ? EXIT_MISBEHAVIOUR : EXIT_OK;
  },
};

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  syncCommand,
  statusCommand,
  verifyCheckpointCommand,
  verifyEvidenceCommand,
  lookupCommand,
  monitorCommand,
];

async function readInput(ctx: CommandContext, file: string): Promise<string> {
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    }
    return await readFile(resolve(ctx.io.cwd, file), 'utf8');
  } catch (e) {
    throw new AuditError('ERR_AUDIT_USAGE', `cannot read ${file}`, { cause: e });
  }
}

function mainHelp(): string {
  return [
    'keytrail-audit: replay and verify a Keytrail key directory',
    '',
    'Usage: keytrail-audit COMMAND [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(20)}${c.summary}`),
    '',
    "Run 'keytrail-audit COMMAND --help' for a command's options.",
    '',
    COMMON_HELP,
    '',
  ].join('\n');
}

function commandHelp(c: Command): string {
  return `Usage: keytrail-audit ${c.usage} [--state DIR] [--json]\n\n${c.help}\n\n${COMMON_HELP}\n`;
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const name = argv[0];
  const wantsJson = argv.includes('--json');
  /**
   * Reports an error: JSON on stdout with --json; else `keytrail-audit CMD: [CODE: ]message` on
   * stderr, with the command's usage line for usage errors.
   */
  const fail = (
    code: string,
    message: string,
    exit: number,
    opts: { usage?: string; showCode?: boolean } = {},
  ): number => {
    if (wantsJson) {
      io.stdout.write(JSON.stringify({ ok: false, error: { code, message } }, null, 2) + '\n');
      return exit;
    }
    const who = `keytrail-audit${name && !name.startsWith('-') ? ` ${name}` : ''}`;
    io.stderr.write(
      `${who}: ${opts.showCode === false ? '' : `${code}: `}${message}\n` +
        (opts.usage ? `usage: keytrail-audit ${opts.usage}\n` : ''),
    );
    return exit;
  };
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === undefined) {
      io.stderr.write(mainHelp());
      return EXIT_ERROR;
    }
    io.stdout.write(mainHelp());
    return EXIT_OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd)
    return fail(
      'ERR_AUDIT_USAGE',
      `unknown command ${JSON.stringify(name)} (see --help)`,
      EXIT_ERROR,
      { showCode: false },
    );
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv.slice(1),
      options: { ...COMMON, ...cmd.options },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    return fail('ERR_AUDIT_USAGE', (e as Error).message, EXIT_ERROR, {
      usage: cmd.usage,
      showCode: false,
    });
  }
  if (values.help === true) {
    io.stdout.write(commandHelp(cmd));
    return EXIT_OK;
  }
  const [min, max] = cmd.positionals;
  if (positionals.length < min || positionals.length > max) {
    return fail(
      'ERR_AUDIT_USAGE',
      max === 0
        ? `takes no arguments, got ${JSON.stringify(positionals[0])}`
        : 'wrong number of arguments',
      EXIT_ERROR,
      { usage: cmd.usage, showCode: false },
    );
  }
  const stateArg = str(values, 'state') ?? DEFAULT_STATE_DIR;
  const json = values.json === true;
  const nowEnv = io.env.KEYTRAIL_AUDIT_NOW;
  const ctx: CommandContext = {
    io,
    values,
    positionals,
    json,
    stateDir: resolve(io.cwd, stateArg),
    stateArg,
    now: () =>
      nowEnv !== undefined && /^[0-9]+$/.test(nowEnv)
        ? Number(nowEnv)
        : Math.floor(Date.now() / 1000),
    out: (text) => io.stdout.write(text),
    emit: (value) => io.stdout.write(JSON.stringify(value, null, 2) + '\n'),
  };
  try {
    return await cmd.run(ctx);
  } catch (e) {
    if (e instanceof MisbehaviourError) {
      const f = e.finding;
      const shown = join(stateArg, 'evidence', f.evidenceFile.split(/[\\/]/).pop() ?? '');
      if (json) ctx.emit({ ok: false, finding: findingJson({ ...f, evidenceFile: shown }) });
      else ctx.out(findingText(f, shown));
      return EXIT_MISBEHAVIOUR;
    }
    if (e instanceof AuditError) {
      return fail(e.code, e.message, EXIT_ERROR, {
        ...(e.code === 'ERR_AUDIT_USAGE' ? { usage: cmd.usage } : {}),
      });
    }
    if (e instanceof KtError) return fail(e.code, e.message, EXIT_ERROR);
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    return fail('ERR_INTERNAL', `internal error: ${message}`, EXIT_ERROR, { showCode: false });
  }
}

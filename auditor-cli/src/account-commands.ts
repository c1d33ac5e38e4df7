/**
 * `keytrail-audit lookup` and `keytrail-audit monitor`: one account, checked end to end with the
 * verifying client `@keytrail/client` (VRF proofs, binary ladder, commitment opening, prefix
 * proof, epoch-log inclusion, checkpoint signature, witness quorum, freshness) and against the
 * checkpoint the auditor accepted last, so that a lookup answered from a forked or rolled-back
 * log is caught.
 *
 * `monitor` is KEYTRANS owner monitoring (draft-ietf-keytrans-protocol §8): the owner's device
 * reads the account's full history and every version the owner did not publish is flagged.
 * @module
 */
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  ClientError,
  DirectoryClient,
  InconsistencyDetectedError,
  ProofError,
  decodeDeviceList,
  isAccountId,
  isTenantId,
  ownerReadMessage,
  type AccountRef,
  type Device,
  type FetchLike,
} from '@keytrail/client';
import { bytes, checkpoint, note } from '@keytrail/core';
import { AuditError, EXIT_ERROR, EXIT_MISBEHAVIOUR, EXIT_OK } from './errors.ts';
import type { Command, CommandContext } from './commands.ts';
import { StateStore } from './state-store.ts';

function parseAccount(ctx: CommandContext): AccountRef {
  const arg = ctx.positionals[0] as string;
  const tenantOpt = ctx.values.tenant;
  const [tenant, account] =
    typeof tenantOpt === 'string' ? [tenantOpt, arg] : (arg.split('/', 2) as [string, string?]);
  if (account === undefined || !isTenantId(tenant) || !isAccountId(account)) {
    throw new AuditError(
      'ERR_AUDIT_USAGE',
      `not an account: ${JSON.stringify(arg)} (use TENANT/ACCOUNT)`,
    );
  }
  return { tenant, account };
}

const fetchLike: FetchLike = async (url, init) => {
  const res = await fetch(url, {
    method: init?.method ?? 'GET',
    ...(init?.headers ? { headers: init.headers } : {}),
    ...(init?.body !== undefined ? { body: init.body } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, text: () => res.text() };
};

/** A client pinned to the auditor's trust file and last accepted checkpoint. */
async function clientFor(ctx: CommandContext): Promise<{ client: DirectoryClient; url: string }> {
  const config = await StateStore.readConfig(ctx.stateDir);
  const state = await StateStore.readState(ctx.stateDir);
  const { trust } = config;
  const last = state.checkpoint;
  const client = new DirectoryClient({
    baseUrl: config.url,
    trust: {
      logKey: trust.logKey,
      vrfPublicKey: bytes.fromBase64(trust.vrfPublicKey),
      witnesses: trust.witnesses,
      quorum: trust.quorum,
      maxCheckpointAgeMs: trust.maxAgeSeconds * 1000,
    },
    fetch: fetchLike,
    now: () => ctx.now() * 1000,
    ...(last !== null
      ? (() => {
          const cp = checkpoint.parse(note.parse(last).text);
          return { state: { note: last, size: cp.size, root: cp.root } };
        })()
      : {}),
  });
  return { client, url: config.url };
}

function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id,
    identityKey: bytes.toBase64(d.identityKey),
    ...(d.x25519Key ? { x25519Key: bytes.toBase64(d.x25519Key) } : {}),
    addedAt: new Date(d.addedAt).toISOString(),
    addedBy: d.addedBy,
  };
}

function deviceLines(devices: readonly Device[], indent: string): string[] {
  if (devices.length === 0) return [`${indent}(no devices)`];
  const width = Math.max(...devices.map((d) => d.id.length));
  return devices.map(
    (d) =>
      `${indent}${d.id.padEnd(width)}  ed25519 ${bytes.toBase64(d.identityKey)}${d.x25519Key ? `  x25519 ${bytes.toBase64(d.x25519Key)}` : ''}  added ${new Date(d.addedAt).toISOString()} by ${d.addedBy}`,
  );
}

/** Maps a client error to output and an exit code; rethrows anything else. */
function clientFailure(ctx: CommandContext, e: unknown): number {
  if (!(e instanceof ClientError)) throw e;
  const misbehaviour = e instanceof ProofError || e instanceof InconsistencyDetectedError;
  if (ctx.json) ctx.emit({ ok: false, error: { code: e.code, message: e.message } });
  else if (misbehaviour) ctx.out(`MISBEHAVIOUR FOUND: ${e.code}: ${e.message}\n`);
  else ctx.io.stderr.write(`keytrail-audit: ${e.code}: ${e.message}\n`);
  return misbehaviour ? EXIT_MISBEHAVIOUR : EXIT_ERROR;
}

/** `lookup TENANT/ACCOUNT`. */
export const lookupCommand: Command = {
  name: 'lookup',
  summary: "verify an account's lookup proof and print its device list",
  usage: 'lookup TENANT/ACCOUNT',
  help: `Looks the account up and verifies the proof end to end: VRF proofs, binary ladder,
commitment opening, prefix proof, epoch-log inclusion, checkpoint signature, witness quorum,
freshness, and consistency with the checkpoint this auditor accepted last. Prints the greatest
version and its device list. Exits 1 if a proof fails or the log is inconsistent.

Options:
  --tenant T  give the tenant separately (then ACCOUNT is the bare account id)`,
  options: { tenant: { type: 'string' } },
  positionals: [1, 1],
  async run(ctx) {
    const ref = parseAccount(ctx);
    const { client } = await clientFor(ctx);
    try {
      const r = await client.lookup(ref);
      const cp = checkpoint.parse(note.parse(r.checkpoint).text);
      if (ctx.json) {
        ctx.emit({
          ok: true,
          tenant: r.tenant,
          account: r.account,
          version: r.version,
          epoch: r.epoch,
          checkpoint: { size: cp.size, root: bytes.toBase64(cp.root) },
          devices: r.devices.map(deviceJson),
        });
      } else {
        ctx.out(
          [
            `account     ${r.tenant}/${r.account}`,
            `version     ${r.version} (epoch ${r.epoch}, checkpoint size ${cp.size})`,
            'devices',
            ...deviceLines(r.devices, '  '),
            'verified',
            '',
          ].join('\n'),
        );
      }
      return EXIT_OK;
    } catch (e) {
      if (e instanceof ClientError && e.code === 'ERR_ACCOUNT_NOT_FOUND') {
        if (ctx.json)
          ctx.emit({
            ok: true,
            tenant: ref.tenant,
            account: ref.account,
            version: -1,
            devices: [],
          });
        else
          ctx.out(
            `account     ${ref.tenant}/${ref.account}\nversion     none: the directory proves no device list is published\nverified\n`,
          );
        return EXIT_OK;
      }
      return clientFailure(ctx, e);
    }
  },
};

async function readJsonFile(ctx: CommandContext, path: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(resolve(ctx.io.cwd, path), 'utf8')) as unknown;
  } catch (e) {
    throw new AuditError('ERR_AUDIT_USAGE', `cannot read ${what} ${path}`, { cause: e });
  }
}

/** The owner's device: id and Ed25519 seed, from `{"id": "...", "seed": "<base64 32 bytes>"}`. */
async function ownerAuth(ctx: CommandContext, ref: AccountRef): Promise<Record<string, string>> {
  const path = ctx.values['device-key'];
  if (typeof path !== 'string') throw new AuditError('ERR_AUDIT_USAGE', '--device-key is required');
  const j = await readJsonFile(ctx, path, 'device key');
  const id = (j as { id?: unknown }).id;
  const seedText = (j as { seed?: unknown }).seed;
  let seed: Uint8Array | undefined;
  try {
    seed = typeof seedText === 'string' ? bytes.fromBase64(seedText) : undefined;
  } catch {
    seed = undefined;
  }
  if (typeof id !== 'string' || seed?.length !== 32) {
    throw new AuditError(
      'ERR_AUDIT_USAGE',
      'device key file must be {"id": "...", "seed": "<base64 of 32 bytes>"}',
    );
  }
  // RFC 8410 PKCS#8 wrapping of an Ed25519 seed.
  const pkcs8 = bytes.concatBytes(bytes.fromHex('302e020100300506032b657004220420'), seed);
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
  const ts = ctx.now() * 1000;
  const sig = nodeSign(null, ownerReadMessage(ref, ts), key);
  return { authorization: `KT-Device ${id} ${ts} ${bytes.toBase64(sig)}` };
}

/** The versions the owner published: `{"0": "<base64 device-list encoding>", ...}`. */
async function knownVersions(ctx: CommandContext): Promise<Map<number, Uint8Array> | null> {
  const path = ctx.values.known;
  if (typeof path !== 'string') return null;
  const j = await readJsonFile(ctx, path, 'known versions');
  if (typeof j !== 'object' || j === null || Array.isArray(j)) {
    throw new AuditError(
      'ERR_AUDIT_USAGE',
      'known versions must be a JSON object {version: base64}',
    );
  }
  const out = new Map<number, Uint8Array>();
  for (const [k, v] of Object.entries(j)) {
    if (!/^(0|[1-9][0-9]*)$/.test(k) || typeof v !== 'string') {
      throw new AuditError('ERR_AUDIT_USAGE', `known versions: bad entry ${JSON.stringify(k)}`);
    }
    try {
      out.set(Number(k), bytes.fromBase64(v));
    } catch (e) {
      throw new AuditError('ERR_AUDIT_USAGE', `known versions: version ${k} is not base64`, {
        cause: e,
      });
    }
  }
  return out;
}

/** `monitor TENANT/ACCOUNT`. */
export const monitorCommand: Command = {
  name: 'monitor',
  summary: "show an owner's history and flag versions the owner did not publish",
  usage: 'monitor TENANT/ACCOUNT --device-key FILE [--known FILE]',
  help: `Owner monitoring: reads the account's full history as one of its devices, verifies the
history proof (every version listed, the rest of the ladder absent) and flags every version the
owner did not publish, whatever its number, every version whose value differs and every
published version that is missing. Exits 1 if anything is flagged or a proof fails.

Options:
  --tenant T         give the tenant separately
  --device-key FILE  the owner's device: {"id": "...", "seed": "<base64 Ed25519 seed>"}
  --known FILE       versions the owner published: {"0": "<base64 device list>", ...};
                     without it the history is shown and nothing can be flagged`,
  options: {
    tenant: { type: 'string' },
    'device-key': { type: 'string' },
    known: { type: 'string' },
  },
  positionals: [1, 1],
  async run(ctx) {
    const ref = parseAccount(ctx);
    const auth = await ownerAuth(ctx, ref);
    const known = await knownVersions(ctx);
    const { client } = await clientFor(ctx);
    try {
      const report = await client.monitor(ref, known ?? new Map(), auth);
      const alerts = known === null ? [] : report.alerts;
      const devicesOf = (value: Uint8Array): Device[] | undefined => {
        try {
          return decodeDeviceList(value);
        } catch {
          return undefined;
        }
      };
      if (ctx.json) {
        ctx.emit({
          ok: alerts.length === 0,
          tenant: ref.tenant,
          account: ref.account,
          greatestVersion: report.greatestVersion,
          versions: report.versions.map((v) => ({
            version: v.version,
            epoch: v.epoch,
            value: bytes.toBase64(v.value),
            devices: devicesOf(v.value)?.map(deviceJson) ?? null,
          })),
          alerts: alerts.map((a) => ({ kind: a.kind, version: a.version, epoch: a.epoch ?? null })),
          checked: known !== null,
        });
      } else {
        const flagged = new Map(alerts.map((a) => [a.version, a.kind]));
        const lines = [
          `account     ${ref.tenant}/${ref.account}`,
          `versions    ${report.versions.length} (greatest ${report.greatestVersion})`,
        ];
        for (const v of report.versions) {
          const flag = flagged.get(v.version);
          lines.push(
            `  version ${v.version} (epoch ${v.epoch})${flag ? `  FLAGGED: ${flag}` : ''}`,
          );
          const devices = devicesOf(v.value);
          lines.push(...(devices ? deviceLines(devices, '    ') : ['    (not a device list)']));
        }
        for (const a of alerts)
          if (a.kind === 'missing-version')
            lines.push(`  version ${a.version}  FLAGGED: missing-version`);
        lines.push(
          known === null
            ? 'history verified; pass --known to flag versions you did not publish'
            : alerts.length === 0
              ? 'history verified: exactly the versions the owner published'
              : `MISBEHAVIOUR FOUND: ${alerts.length} version(s) flagged`,
          '',
        );
        ctx.out(lines.join('\n'));
      }
      return alerts.length === 0 ? EXIT_OK : EXIT_MISBEHAVIOUR;
    } catch (e) {
      return clientFailure(ctx, e);
    }
  },
};

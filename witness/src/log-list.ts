/**
 * The followed-logs file: the witness-network log-list format `logs/v0`
 * (transparency-dev/witness-network `log-list-format.md`), so an operator can feed the witness
 * a public list unchanged:
 *
 * ```
 * # comments and blank lines are ignored, except that blank lines end an entry
 * logs/v0
 * revision 7                         (optional, informational)
 *
 * vkey sigsum.org/v1/tree/4d6d…+5202289b+Af/cLU2Y…   (starts an entry; Ed25519 0x01 note key)
 * origin sigsum.org/v1/tree/4d6d…    (optional; `none` or absent: the vkey's key name)
 * qpd 1440                           (optional: checkpoints per day the log may submit)
 * contact ops@example.org            (optional)
 * bastion none                       (accepted and ignored)
 * ```
 *
 * Entries with the same origin are merged, so a log with two keys (rotation) is two entries.
 * @module
 */
import { note } from '@keytrail/core';
import { WitnessError } from './errors.ts';
import type { FollowedLog } from './store.ts';

interface Entry {
  vkey: string;
  origin?: string;
  qpd?: number;
  contact?: string;
  line: number;
}

function fail(line: number, message: string): never {
  throw new WitnessError('ERR_WITNESS_CONFIG', `log list line ${String(line)}: ${message}`);
}

/**
 * Parses a `logs/v0` log list.
 * @throws WitnessError `ERR_WITNESS_CONFIG` naming the line: a missing header, an unknown or
 *   repeated keyword, a line before the first `vkey`, an unparseable or non-Ed25519 key, a bad
 *   `qpd`, an origin with spaces, or one origin given two different `qpd`/`contact` values.
 */
export function parseLogList(text: string): FollowedLog[] {
  const entries: Entry[] = [];
  let header = false;
  let current: Entry | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = (lines[i] ?? '').replace(/\r$/, '').trim();
    if (line.startsWith('#')) continue;
    if (line === '') {
      current = undefined;
      continue;
    }
    if (!header) {
      if (line !== 'logs/v0') fail(n, 'expected the header "logs/v0"');
      header = true;
      continue;
    }
    const sp = line.indexOf(' ');
    const word = sp < 0 ? line : line.slice(0, sp);
    const value = sp < 0 ? '' : line.slice(sp + 1).trim();
    if (word === 'revision' && entries.length === 0 && !current) {
      if (!/^\d+$/.test(value)) fail(n, 'revision must be a number');
      continue;
    }
    if (word === 'vkey') {
      try {
        note.parseVerifierKey(value);
      } catch {
        fail(n, 'vkey is not an Ed25519 signed-note verifier key');
      }
      current = { vkey: value, line: n };
      entries.push(current);
      continue;
    }
    if (!current) fail(n, `"${word}" outside an entry (an entry starts with "vkey")`);
    switch (word) {
      case 'origin':
        if (current.origin !== undefined) fail(n, 'origin given twice');
        if (value === '' || /\s/.test(value)) fail(n, 'origin must be non-empty without spaces');
        current.origin = value;
        break;
      case 'qpd':
        if (current.qpd !== undefined) fail(n, 'qpd given twice');
        if (!/^[1-9]\d{0,9}$/.test(value) || Number(value) > 2 ** 31 - 1) {
          fail(n, 'qpd must be a whole number from 1 to 2^31-1');
        }
        current.qpd = Number(value);
        break;
      case 'contact':
        if (current.contact !== undefined) fail(n, 'contact given twice');
        current.contact = value;
        break;
      case 'bastion':
        break;
      default:
        fail(n, `unknown keyword "${word}"`);
    }
  }
  if (!header) fail(1, 'expected the header "logs/v0"');

  const byOrigin = new Map<
    string,
    { vkeys: string[]; qpd?: number; contact?: string; line: number }
  >();
  for (const e of entries) {
    const origin = e.origin === undefined || e.origin === 'none' ? keyName(e.vkey) : e.origin;
    const log = byOrigin.get(origin) ?? { vkeys: [], line: e.line };
    if (!log.vkeys.includes(e.vkey)) log.vkeys.push(e.vkey);
    if (e.qpd !== undefined) {
      if (log.qpd !== undefined && log.qpd !== e.qpd) fail(e.line, `conflicting qpd for ${origin}`);
      log.qpd = e.qpd;
    }
    if (e.contact !== undefined) {
      if (log.contact !== undefined && log.contact !== e.contact) {
        fail(e.line, `conflicting contact for ${origin}`);
      }
      log.contact = e.contact;
    }
    byOrigin.set(origin, log);
  }
  return [...byOrigin].map(([origin, l]) => ({
    origin,
    vkeys: l.vkeys,
    qpd: l.qpd ?? null,
    contact: l.contact ?? null,
  }));
}

/** The key name of a verifier key (`<name>+<hex8>+<base64>`). */
export function keyName(vkey: string): string {
  return vkey.slice(0, vkey.indexOf('+'));
}

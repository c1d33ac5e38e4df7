/**
 * The directory's witness configuration in the C2SP tlog-policy format: which witnesses to ask
 * for cosignatures (name, `cosignature/v1` vkey, submission URL) and the quorum rule that must
 * hold before a checkpoint is published with its cosignatures.
 *
 * ```
 * # comments; fields separated by spaces or tabs
 * log <vkey> [<url>]                 (accepted and ignored: the log is this directory)
 * witness <name> <vkey> <url>        (the URL is the witness's submission prefix; required here)
 * group <name> <k|all|any> <name>…   (members: witnesses or earlier groups, each at most once)
 * quorum <name|none>                 (exactly one)
 * ```
 *
 * Two witnesses with the same public key are refused (tlog-policy "duplicate"); so is a name
 * defined twice or used before it is defined.
 * @module
 */
import { bytes, cosignature } from '@keytrail/core';

/** One witness the directory calls. */
export interface WitnessEndpoint {
  /** The policy-local name (used in groups and metrics). */
  readonly name: string;
  /** The witness's `cosignature/v1` verifier key. */
  readonly vkey: string;
  readonly verifier: cosignature.CosignatureVerifier;
  /** The submission prefix: requests go to `<url>/add-checkpoint`. */
  readonly url: string;
}

/** A quorum rule: a witness, or k of a group's members. */
export type QuorumRule =
  | { readonly kind: 'none' }
  | { readonly kind: 'witness'; readonly name: string }
  | {
      readonly kind: 'group';
      readonly name: string;
      readonly k: number;
      readonly members: readonly QuorumRule[];
    };

/** A parsed policy. */
export interface WitnessPolicy {
  readonly witnesses: readonly WitnessEndpoint[];
  readonly quorum: QuorumRule;
}

/** Thrown for a policy file that does not parse; names the line. */
export class WitnessPolicyError extends Error {
  readonly code = 'ERR_WITNESSING_POLICY' as const;
  constructor(line: number, message: string) {
    super(`witness policy line ${String(line)}: ${message}`);
    this.name = 'WitnessPolicyError';
  }
}

/** tlog-policy allows tab and newline, and no other control character. */
function hasControl(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * Parses a tlog-policy file for the directory.
 * @throws WitnessPolicyError (see the module documentation).
 */
export function parseWitnessPolicy(text: string): WitnessPolicy {
  const witnesses: WitnessEndpoint[] = [];
  const rules = new Map<string, QuorumRule>();
  const keys = new Set<string>();
  let quorum: QuorumRule | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = lines[i] ?? '';
    if (hasControl(raw)) throw new WitnessPolicyError(n, 'control character');
    const fields = raw
      .trim()
      .split(/[ \t]+/)
      .filter(Boolean);
    const [word, ...args] = fields;
    if (word === undefined || word.startsWith('#')) continue;
    const define = (name: string, rule: QuorumRule): void => {
      if (name === 'none' || rules.has(name))
        throw new WitnessPolicyError(n, `name "${name}" defined twice`);
      rules.set(name, rule);
    };
    switch (word) {
      case 'log':
        if (args.length < 1 || args.length > 2)
          throw new WitnessPolicyError(n, 'expected: log <vkey> [<url>]');
        break;
      case 'witness': {
        const [name, vkey, url, ...extra] = args;
        if (name === undefined || vkey === undefined || url === undefined || extra.length > 0) {
          throw new WitnessPolicyError(n, 'expected: witness <name> <vkey> <url>');
        }
        let verifier: cosignature.CosignatureVerifier;
        try {
          verifier = cosignature.parseVerifierKey(vkey);
        } catch {
          throw new WitnessPolicyError(n, 'not a cosignature/v1 (0x04) verifier key');
        }
        let parsed: URL;
        try {
          parsed = new URL(url);
        } catch {
          throw new WitnessPolicyError(n, 'not a URL');
        }
        if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
          throw new WitnessPolicyError(n, 'the witness URL must be http or https');
        }
        const pk = bytes.toBase64(verifier.publicKey);
        if (keys.has(pk)) throw new WitnessPolicyError(n, 'duplicate witness key');
        keys.add(pk);
        define(name, { kind: 'witness', name });
        witnesses.push({ name, vkey, verifier, url: url.replace(/\/+$/, '') });
        break;
      }
      case 'group': {
        const [name, threshold, ...memberNames] = args;
        if (name === undefined || threshold === undefined || memberNames.length === 0) {
          throw new WitnessPolicyError(n, 'expected: group <name> <k|all|any> <name>...');
        }
        if (new Set(memberNames).size !== memberNames.length) {
          throw new WitnessPolicyError(n, 'a member is listed twice');
        }
        const members = memberNames.map((m) => {
          const rule = rules.get(m);
          if (!rule) throw new WitnessPolicyError(n, `"${m}" is not defined on a previous line`);
          return rule;
        });
        let k: number;
        if (threshold === 'all') k = members.length;
        else if (threshold === 'any') k = 1;
        else if (/^[1-9][0-9]*$/.test(threshold) && Number(threshold) <= members.length)
          k = Number(threshold);
        else throw new WitnessPolicyError(n, 'threshold must be all, any or 1..n');
        define(name, { kind: 'group', name, k, members });
        break;
      }
      case 'quorum': {
        const [name, ...extra] = args;
        if (name === undefined || extra.length > 0)
          throw new WitnessPolicyError(n, 'expected: quorum <name>');
        if (quorum) throw new WitnessPolicyError(n, 'quorum given twice');
        const rule = name === 'none' ? ({ kind: 'none' } as const) : rules.get(name);
        if (!rule) throw new WitnessPolicyError(n, `"${name}" is not defined on a previous line`);
        quorum = rule;
        break;
      }
      default:
        throw new WitnessPolicyError(n, `unknown keyword "${word}"`);
    }
  }
  if (!quorum) throw new WitnessPolicyError(lines.length, 'no quorum line');
  return { witnesses, quorum };
}

/** Whether the witnesses named in `cosigned` satisfy `rule`. */
export function quorumMet(rule: QuorumRule, cosigned: ReadonlySet<string>): boolean {
  switch (rule.kind) {
    case 'none':
      return true;
    case 'witness':
      return cosigned.has(rule.name);
    case 'group':
      return rule.members.filter((m) => quorumMet(m, cosigned)).length >= rule.k;
  }
}

/**
 * The rule as "k of these witnesses" when it is one (a witness, `none`, or a group of
 * witnesses), which is what `cosignature.verifyCheckpoint` and `/v1/config` express; undefined
 * for nested groups.
 */
export function flatQuorum(
  policy: WitnessPolicy,
): { k: number; witnesses: WitnessEndpoint[] } | undefined {
  const q = policy.quorum;
  const byName = (name: string): WitnessEndpoint | undefined =>
    policy.witnesses.find((w) => w.name === name);
  if (q.kind === 'none') return { k: 0, witnesses: [] };
  if (q.kind === 'witness') {
    const w = byName(q.name);
    return w ? { k: 1, witnesses: [w] } : undefined;
  }
  const ws: WitnessEndpoint[] = [];
  for (const m of q.members) {
    const w = m.kind === 'witness' ? byName(m.name) : undefined;
    if (!w) return undefined;
    ws.push(w);
  }
  return { k: q.k, witnesses: ws };
}

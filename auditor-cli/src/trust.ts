/**
 * The auditor's trust file: what it pins about the directory it audits (ARCHITECTURE.md
 * §Protocol 8, "a trust configuration").
 *
 * A JSON object:
 * ```json
 * {
 *   "origin": "keytrail.example/directory",
 *   "logKey": "keytrail.example/directory+4c7a1f2e+AXa…",
 *   "vrfPublicKey": "base64 of the 32-byte ECVRF-EDWARDS25519-SHA512-TAI public key",
 *   "witnesses": ["witness.example/w1+9d1ab951+BAAW…", { "vkey": "w2+…", "url": "…" }],
 *   "quorum": 1,
 *   "maxAgeSeconds": 86400
 * }
 * ```
 * - `logKey`: the directory's C2SP signed-note verifier key, Ed25519 (type 0x01).
 * - `origin` (optional): the checkpoint origin line; defaults to the key name.
 * - `witnesses`: C2SP tlog-cosignature `cosignature/v1` verifier keys (type 0x04), as strings or
 *   as objects with a `vkey` (the `/v1/config` shape); other members are ignored.
 * - `quorum`: how many distinct trusted witnesses must cosign a checkpoint (0 ≤ quorum ≤ count).
 * - `maxAgeSeconds`: the newest cosignature of the quorum must be at most this old.
 * @module
 */
import { bytes, cosignature, note, KtError } from '@keytrail/core';
import { AuditError } from './errors.ts';

/** A validated trust configuration, kept exactly as given so it can be re-serialised. */
export interface TrustConfig {
  readonly origin: string;
  readonly logKey: string;
  readonly vrfPublicKey: string;
  readonly witnesses: readonly string[];
  readonly quorum: number;
  readonly maxAgeSeconds: number;
}

/** A trust configuration with its keys parsed, ready for verification. */
export interface TrustPolicy {
  readonly config: TrustConfig;
  readonly log: note.Verifier;
  readonly witnesses: readonly cosignature.CosignatureVerifier[];
  readonly vrfPublicKey: Uint8Array;
}

function bad(message: string, cause?: unknown): AuditError {
  return new AuditError('ERR_AUDIT_TRUST_FILE', `trust file: ${message}`, { cause });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates a parsed trust file.
 * @throws AuditError `ERR_AUDIT_TRUST_FILE` naming the field at fault.
 */
export function parseTrustConfig(value: unknown): TrustConfig {
  if (!isRecord(value)) throw bad('expected a JSON object');
  const { logKey, vrfPublicKey, witnesses, quorum, maxAgeSeconds } = value;
  if (typeof logKey !== 'string') throw bad('"logKey" must be a verifier key string');
  let logName: string;
  try {
    const v = note.parseVerifierKey(logKey);
    if (v.type !== 0x01) throw bad('"logKey" must be an Ed25519 (type 0x01) verifier key');
    logName = v.name;
  } catch (e) {
    if (e instanceof AuditError) throw e;
    throw bad(`"logKey" is not a valid verifier key (${codeOf(e)})`, e);
  }
  const origin = value.origin ?? logName;
  if (typeof origin !== 'string' || origin.length === 0 || /[\n]/.test(origin)) {
    throw bad('"origin" must be a non-empty single-line string');
  }
  if (typeof vrfPublicKey !== 'string') throw bad('"vrfPublicKey" must be a base64 string');
  let vrf: Uint8Array;
  try {
    vrf = bytes.fromBase64(vrfPublicKey);
  } catch (e) {
    throw bad('"vrfPublicKey" is not valid base64', e);
  }
  if (vrf.length !== 32) throw bad('"vrfPublicKey" must be 32 bytes');
  if (!Array.isArray(witnesses)) throw bad('"witnesses" must be an array');
  const wkeys: string[] = [];
  const seen = new Set<string>();
  for (const [i, w] of (witnesses as unknown[]).entries()) {
    const vkey = typeof w === 'string' ? w : isRecord(w) ? w.vkey : undefined;
    if (typeof vkey !== 'string') throw bad(`"witnesses"[${i}] must be a vkey or {"vkey": …}`);
    let parsed: cosignature.CosignatureVerifier;
    try {
      parsed = cosignature.parseVerifierKey(vkey);
    } catch (e) {
      throw bad(
        `"witnesses"[${i}] is not a cosignature/v1 (type 0x04) verifier key (${codeOf(e)})`,
        e,
      );
    }
    const id = `${parsed.name}\n${String(parsed.keyId)}`;
    if (seen.has(id)) throw bad(`"witnesses"[${i}] is listed twice`);
    seen.add(id);
    wkeys.push(vkey);
  }
  if (typeof quorum !== 'number' || !Number.isInteger(quorum) || quorum < 0) {
    throw bad('"quorum" must be a non-negative integer');
  }
  if (quorum > wkeys.length) throw bad(`"quorum" ${quorum} exceeds the ${wkeys.length} witnesses`);
  if (typeof maxAgeSeconds !== 'number' || !Number.isInteger(maxAgeSeconds) || maxAgeSeconds < 1) {
    throw bad('"maxAgeSeconds" must be a positive integer');
  }
  return { origin, logKey, vrfPublicKey, witnesses: wkeys, quorum, maxAgeSeconds };
}

/**
 * Parses the text of a trust file.
 * @throws AuditError `ERR_AUDIT_TRUST_FILE`
 */
export function parseTrustFile(text: string): TrustConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad('not valid JSON', e);
  }
  return parseTrustConfig(json);
}

/** Parses the keys of a validated configuration. */
export function trustPolicy(config: TrustConfig): TrustPolicy {
  return {
    config,
    log: note.parseVerifierKey(config.logKey),
    witnesses: config.witnesses.map((w) => cosignature.parseVerifierKey(w)),
    vrfPublicKey: bytes.fromBase64(config.vrfPublicKey),
  };
}

/** The error code of a thrown value, for messages. */
export function codeOf(e: unknown): string {
  if (e instanceof KtError || e instanceof AuditError) return e.code;
  return e instanceof Error ? e.name : 'error';
}

/**
 * Backup codes that each wrap the account's archive key (notes-identity.md "Backup codes
 * escrowing the archive key"). This module is the **client side** of the scheme: it runs
 * where the archive key lives (the browser or device; Node here, for tests, the benchmark and
 * server-assisted tooling). The server only ever receives {@link BackupSlot}s.
 *
 * - Code: a slot digit 1–8, then 20 Crockford base32 characters (100 bits) in groups of 4:
 *   `3-7KQ2-X9MD-0RTA-HH4B-ZPWE`. The slot is not secret; it lets recovery run one KDF, not 8.
 * - `K = Argon2id(code, salt16, m, t, p, 32)` (RFC 9106), `KEK = HKDF-SHA256(K, "kt/backup/kek/v1")`,
 *   `AUTH = HKDF-SHA256(K, "kt/backup/auth/v1")` (RFC 5869, empty salt).
 * - `wrapped = nonce12 || AES-256-GCM(KEK, archiveKey, aad = "kt/backup/wrap/v1:<slot>")`.
 * - The server stores `salt, params, wrapped, SHA-256(AUTH)`: it can check AUTH, not unwrap.
 * @module
 */
import { hashRaw, type Algorithm } from '@node-rs/argon2';
import { BACKUP_KDF_PARAMS, type KdfParams } from './config.ts';

/** Number of codes per account. */
export const BACKUP_CODE_COUNT = 8;
/** Secret characters per code (5 bits each: 100 bits). */
export const BACKUP_CODE_CHARS = 20;
/** Archive-key length, bytes. */
export const ARCHIVE_KEY_BYTES = 32;
/** Wrapped archive key length: nonce(12) + key(32) + tag(16). */
export const WRAPPED_KEY_BYTES = 60;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
// @node-rs/argon2 declares a const enum that has no runtime object: Argon2d 0, Argon2i 1, Argon2id 2.
// eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- the enum's declared value
const ARGON2ID = 2 as Algorithm;
const KEK_INFO = 'kt/backup/kek/v1';
const AUTH_INFO = 'kt/backup/auth/v1';

/** What the server stores for one code. */
export interface BackupSlot {
  readonly slot: number;
  readonly salt: Uint8Array;
  readonly params: KdfParams;
  readonly wrappedKey: Uint8Array;
  /** SHA-256(AUTH). */
  readonly authVerifier: Uint8Array;
}

/** A parsed code. */
export interface ParsedBackupCode {
  readonly slot: number;
  /** The 20 canonical Crockford characters, no separators. */
  readonly secret: string;
}

/** Encodes a slot and 20 canonical characters as `S-XXXX-XXXX-XXXX-XXXX-XXXX`. */
export function formatBackupCode(code: ParsedBackupCode): string {
  const groups = code.secret.match(/.{4}/g) ?? [];
  return `${code.slot}-${groups.join('-')}`;
}

/**
 * Parses a code as a person types it: case-insensitive, hyphens and spaces ignored, and
 * Crockford's substitutions (O→0, I and L→1).
 * @returns `undefined` for anything that is not a well-formed code (attacker-controlled input).
 */
export function parseBackupCode(text: string): ParsedBackupCode | undefined {
  if (text.length > 64) return undefined;
  const s = text.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (s.length !== 1 + BACKUP_CODE_CHARS) return undefined;
  const slot = s.charCodeAt(0) - 48;
  if (slot < 1 || slot > BACKUP_CODE_COUNT) return undefined;
  const secret = s.slice(1);
  for (const ch of secret) if (!CROCKFORD.includes(ch)) return undefined;
  return { slot, secret };
}

/** 20 random Crockford characters (100 bits from `crypto.getRandomValues`). */
export function randomBackupSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(13)); // 104 bits; the top 100 are used
  let out = '';
  for (let i = 0; i < BACKUP_CODE_CHARS; i++) {
    const bit = i * 5;
    const hi = bytes[bit >> 3] ?? 0;
    const lo = bytes[(bit >> 3) + 1] ?? 0;
    out += CROCKFORD[(((hi << 8) | lo) >> (11 - (bit & 7))) & 31] ?? '';
  }
  return out;
}

async function hkdf(ikm: Uint8Array, info: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', ikm as Uint8Array<ArrayBuffer>, 'HKDF', false, [
    'deriveBits',
  ]);
  const bits = await crypto.subtle.deriveBits(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: new Uint8Array(0),
      info: new TextEncoder().encode(info),
    },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** Argon2id of a code's canonical secret (32 bytes). */
export async function argon2id(
  secret: string,
  salt: Uint8Array,
  params: KdfParams,
): Promise<Uint8Array> {
  const out = await hashRaw(secret, {
    algorithm: ARGON2ID,
    salt,
    memoryCost: params.memoryKiB,
    timeCost: params.passes,
    parallelism: params.parallelism,
    outputLen: 32,
  });
  return new Uint8Array(out);
}

/** KEK and AUTH of one code. */
export interface DerivedKeys {
  readonly kek: Uint8Array;
  readonly auth: Uint8Array;
}

/** Runs the whole derivation for one code and slot salt. */
export async function deriveBackupKeys(
  code: ParsedBackupCode,
  salt: Uint8Array,
  params: KdfParams,
): Promise<DerivedKeys> {
  const k = await argon2id(code.secret, salt, params);
  return { kek: await hkdf(k, KEK_INFO), auth: await hkdf(k, AUTH_INFO) };
}

function aad(slot: number): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`kt/backup/wrap/v1:${slot}`);
}

async function gcmKey(kek: Uint8Array, use: 'encrypt' | 'decrypt'): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', kek as Uint8Array<ArrayBuffer>, 'AES-GCM', false, [use]);
}

/** Wraps the archive key under a KEK for `slot`. */
export async function wrapArchiveKey(
  kek: Uint8Array,
  slot: number,
  archiveKey: Uint8Array,
): Promise<Uint8Array> {
  if (archiveKey.length !== ARCHIVE_KEY_BYTES)
    throw new RangeError('wrapArchiveKey: archive key must be 32 bytes');
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: aad(slot) },
    await gcmKey(kek, 'encrypt'),
    archiveKey as Uint8Array<ArrayBuffer>,
  );
  const out = new Uint8Array(12 + ct.byteLength);
  out.set(iv);
  out.set(new Uint8Array(ct), 12);
  return out;
}

/** Unwraps a wrapped archive key; `undefined` when the KEK or slot is wrong or it was altered. */
export async function unwrapArchiveKey(
  kek: Uint8Array,
  slot: number,
  wrapped: Uint8Array,
): Promise<Uint8Array | undefined> {
  if (wrapped.length !== WRAPPED_KEY_BYTES) return undefined;
  try {
    const pt = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: wrapped.slice(0, 12), additionalData: aad(slot) },
      await gcmKey(kek, 'decrypt'),
      wrapped.slice(12),
    );
    return new Uint8Array(pt);
  } catch {
    return undefined;
  }
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
}

/** The server-side verifier for an AUTH value. */
export async function authVerifier(auth: Uint8Array): Promise<Uint8Array> {
  return sha256(auth);
}

/** Eight fresh codes and the slots to upload, all wrapping `archiveKey`. */
export interface GeneratedBackupCodes {
  /** Shown to the person once, then forgotten. */
  readonly codes: string[];
  readonly slots: BackupSlot[];
}

/**
 * Generates 8 codes and wraps `archiveKey` under each (client side).
 * @example const { codes, slots } = await generateBackupCodes(archiveKey);
 */
export async function generateBackupCodes(
  archiveKey: Uint8Array,
  params: KdfParams = BACKUP_KDF_PARAMS,
): Promise<GeneratedBackupCodes> {
  const codes: string[] = [];
  const slots: BackupSlot[] = [];
  for (let slot = 1; slot <= BACKUP_CODE_COUNT; slot++) {
    const code = { slot, secret: randomBackupSecret() };
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const { kek, auth } = await deriveBackupKeys(code, salt, params);
    slots.push({
      slot,
      salt,
      params,
      wrappedKey: await wrapArchiveKey(kek, slot, archiveKey),
      authVerifier: await authVerifier(auth),
    });
    codes.push(formatBackupCode(code));
  }
  return { codes, slots };
}

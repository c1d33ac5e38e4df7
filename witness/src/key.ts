/**
 * The witness's own Ed25519 key and its C2SP tlog-cosignature v1.0.1 identity: a
 * `cosignature/v1` (type 0x04) verifier key `<name>+<hex8 key ID>+<base64(0x04 || pk)>`, with
 * key ID = SHA-256(name || 0x0A || 0x04 || pk)[:4] (derived here, never copied from a 0x01 key).
 *
 * The key lives in a file holding the Go `sumdb/note` signer-key string
 * (`PRIVATE+KEY+<name>+<hex8>+<base64(0x01 || seed)>`, the format `note.GenerateKey` writes), so
 * standard tooling can read it. The file is created on first start with mode 0600 in a 0700
 * directory: written and fsynced under a temporary name, then hard-linked into place (two
 * processes starting at once never overwrite each other's key or read half of one). A file
 * that group or others can read is refused, as OpenSSH does.
 *
 * Signing uses `node:crypto` (native Ed25519); verification elsewhere goes through the core's
 * crypto seam.
 * @module
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { cosignature, note, bytes, KtError } from '@keytrail/core';
import { WitnessError } from './errors.ts';
import { signAsync } from './async-crypto.ts';

/** The witness's signing identity. */
export interface WitnessKey {
  /** The cosigner name (not signed; it only selects the key ID). */
  readonly name: string;
  /** The Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
  /** The `cosignature/v1` key ID. */
  readonly keyId: number;
  /** The `cosignature/v1` verifier key string clients and logs configure. */
  readonly vkey: string;
  /** A `note.Signer` for `cosignature.sign` (0x04 key ID, native Ed25519). */
  readonly signer: note.Signer;
  /** Ed25519 over `msg` on the libuv thread pool (the request path uses this). */
  readonly signAsync: (msg: Uint8Array) => Promise<Uint8Array>;
  /** The Go signer-key string to store (secret). */
  readonly signerKeyString: string;
}

// PKCS#8 wrapper of a raw Ed25519 seed (RFC 8410): SEQUENCE { INTEGER 0, AlgorithmIdentifier
// { 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }.
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** Cosigner names: non-empty, well-formed, no Unicode space, no `+` (C2SP signed-note). */
export function isValidKeyName(name: string): boolean {
  return note.isValidName(name) && name.length <= 255;
}

function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  const der = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  der.set(PKCS8_ED25519_PREFIX);
  der.set(seed, PKCS8_ED25519_PREFIX.length);
  return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
}

/** `node:crypto` Ed25519 signing for one seed; the key object is built on first use. */
interface NodeSigning {
  readonly signFn: note.Ed25519SignFn;
  key(): KeyObject | undefined;
}

function nodeSigning(): NodeSigning {
  let priv: KeyObject | undefined;
  return {
    signFn: (msg, seed) => {
      priv ??= privateKeyFromSeed(seed);
      return new Uint8Array(sign(null, msg, priv));
    },
    key: () => priv,
  };
}

function fromNoteSigner(
  s: note.Signer & { publicKey: Uint8Array },
  signerKeyString: string,
  signing: NodeSigning,
): WitnessKey {
  const keyId = cosignature.keyId(s.name, s.publicKey);
  // One signature through the note signer builds the private key object (from the seed,
  // which only the signer holds) for the asynchronous path.
  s.sign(new Uint8Array(0));
  const priv = signing.key();
  if (!priv) throw new RangeError('witness key: no private key object');
  return {
    signAsync: (msg: Uint8Array) => signAsync(priv, msg),
    name: s.name,
    publicKey: s.publicKey,
    keyId,
    vkey: cosignature.formatVerifierKey(s.name, s.publicKey),
    // Same Ed25519 key, its cosignature/v1 (0x04) key ID.
    signer: { name: s.name, keyId, sign: (msg: Uint8Array): Uint8Array => s.sign(msg) },
    signerKeyString,
  };
}

/**
 * The witness key for a 32-byte Ed25519 seed.
 * @throws RangeError for a bad seed length or an invalid name.
 */
export function witnessKeyFromSeed(name: string, seed: Uint8Array): WitnessKey {
  if (seed.length !== 32) throw new RangeError('witnessKeyFromSeed: seed must be 32 bytes');
  if (!isValidKeyName(name)) throw new RangeError('witnessKeyFromSeed: invalid key name');
  const signing = nodeSigning();
  return fromNoteSigner(
    note.ed25519Signer(name, seed, signing.signFn),
    note.formatSignerKey(name, seed),
    signing,
  );
}

/** A fresh key with a random seed. */
export function generateWitnessKey(name: string): WitnessKey {
  return witnessKeyFromSeed(name, new Uint8Array(randomBytes(32)));
}

/**
 * Reads a witness key from the Go signer-key string.
 * @throws WitnessError `ERR_WITNESS_KEY_FILE` when the string does not parse or is not Ed25519.
 */
export function parseWitnessKey(text: string): WitnessKey {
  const skey = text.trim();
  try {
    const signing = nodeSigning();
    return fromNoteSigner(note.parseSignerKey(skey, signing.signFn), skey, signing);
  } catch (err) {
    if (err instanceof KtError || err instanceof RangeError || err instanceof TypeError) {
      throw new WitnessError(
        'ERR_WITNESS_KEY_FILE',
        'key file does not hold a valid Ed25519 signer key',
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}

/** Result of {@link loadOrCreateKeyFile}. */
export interface LoadedKey {
  readonly key: WitnessKey;
  /** True when the file did not exist and was created now. */
  readonly created: boolean;
}

/** Options of {@link loadOrCreateKeyFile}. */
export interface KeyFileOptions {
  /** The required name: an existing key with another name is refused. */
  readonly name?: string;
  /** The name of a newly created key when `name` is not given. */
  readonly defaultName?: string;
}

/**
 * Loads the key file, or creates it (mode 0600, O_EXCL, fsynced) with a new random key when it
 * does not exist.
 * @throws WitnessError `ERR_WITNESS_KEY_FILE` when the file is readable by group or others, does
 *   not parse, holds a key whose name differs from `options.name`, or is missing with no name
 *   to create it with.
 */
export async function loadOrCreateKeyFile(
  path: string,
  options: KeyFileOptions = {},
): Promise<LoadedKey> {
  try {
    return { key: await loadKeyFile(path, options.name), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const name = options.name ?? options.defaultName;
  if (name === undefined) {
    throw new WitnessError(
      'ERR_WITNESS_KEY_FILE',
      `no key file at ${path} and no name to create one`,
    );
  }
  if (!isValidKeyName(name)) {
    throw new WitnessError(
      'ERR_WITNESS_KEY_FILE',
      'witness name must be non-empty, without spaces or "+"',
    );
  }
  const key = generateWitnessKey(name);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Write a private temporary file, then link it into place: link() never replaces an existing
  // file and is atomic, so a concurrent starter never reads a half-written key and two
  // starters never end up with different keys.
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(`${key.signerKeyString}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      return { key: await loadKeyFile(path, options.name), created: false };
    }
    throw err;
  } finally {
    await unlink(tmp);
  }
  return { key, created: true };
}

/**
 * Loads an existing key file.
 * @throws WitnessError `ERR_WITNESS_KEY_FILE` (see {@link loadOrCreateKeyFile}); an `ENOENT`
 *   system error when the file does not exist.
 */
export async function loadKeyFile(path: string, name?: string): Promise<WitnessKey> {
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new WitnessError(
      'ERR_WITNESS_KEY_FILE',
      `key file ${path} is accessible by group or others; run: chmod 600 ${path}`,
    );
  }
  const key = parseWitnessKey(await readFile(path, 'utf8'));
  if (name !== undefined && name !== key.name) {
    throw new WitnessError(
      'ERR_WITNESS_KEY_FILE',
      `key file ${path} holds the key of "${key.name}", not "${name}"`,
    );
  }
  return key;
}

/** Formats one cosignature as a note signature line `— <name> <base64(keyID || ts || sig)>\n`. */
export function formatSignatureLine(sig: note.NoteSignature): string {
  return `— ${sig.name} ${bytes.toBase64(bytes.concatBytes(bytes.uintBE(sig.keyId, 4), sig.signature))}\n`;
}

/**
 * Loads the configured key file, creating it on first use: with `KEYTRAIL_WITNESS_NAME` set the
 * key must carry that name; otherwise an existing key keeps its name and a new one gets
 * `defaultName`.
 * @throws WitnessError `ERR_WITNESS_KEY_FILE` (see {@link loadOrCreateKeyFile}).
 */
export function openWitnessKey(config: {
  readonly keyFile: string;
  readonly name: string | undefined;
  readonly defaultName: string;
}): Promise<LoadedKey> {
  return loadOrCreateKeyFile(config.keyFile, {
    ...(config.name !== undefined ? { name: config.name } : {}),
    defaultName: config.defaultName,
  });
}

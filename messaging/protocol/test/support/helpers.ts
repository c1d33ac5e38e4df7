/**
 * Test helpers: the two crypto providers every known-answer and golden test runs on, a
 * deterministic generator for golden transcripts, and an assertion on typed error codes.
 * @module
 */
import { expect } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  type CryptoProvider,
  type MessagingErrorCode,
  MessagingError,
  NOBLE_PROVIDER,
  setCryptoProvider,
  withRandomSource,
} from '../../src/index.ts';
import { createNodeCryptoProvider } from '../../node-provider/node-crypto-provider.ts';

/** The node:crypto provider (created once; it self-tests on creation). */
export const NODE_PROVIDER: CryptoProvider = createNodeCryptoProvider();

/** Both providers, for `describe.each`. */
export const PROVIDERS: readonly { name: string; provider: CryptoProvider }[] = [
  { name: 'noble', provider: NOBLE_PROVIDER },
  { name: 'node', provider: NODE_PROVIDER },
];

/** Runs `fn` with `provider` installed, restoring the previous one afterwards. */
export async function withProvider<T>(
  provider: CryptoProvider,
  fn: () => T | Promise<T>,
): Promise<T> {
  const prev = setCryptoProvider(provider);
  try {
    return await fn();
  } finally {
    setCryptoProvider(prev);
  }
}

/**
 * A deterministic byte generator: block i = SHA-256(seed ‖ u32 i). For golden transcripts only.
 */
export function deterministicRandom(seed: string): (length: number) => Uint8Array {
  const s = new TextEncoder().encode(seed);
  let counter = 0;
  let pool = new Uint8Array(0);
  return (length: number): Uint8Array => {
    const out = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      if (pool.length === 0) {
        const block = new Uint8Array(s.length + 4);
        block.set(s);
        new DataView(block.buffer).setUint32(s.length, counter++);
        pool = sha256(block);
      }
      const n = Math.min(pool.length, length - off);
      out.set(pool.subarray(0, n), off);
      pool = pool.subarray(n);
      off += n;
    }
    return out;
  };
}

/** `provider` with the deterministic generator for `seed`. */
export function seeded(provider: CryptoProvider, seed: string): CryptoProvider {
  return withRandomSource(provider, deterministicRandom(seed));
}

/** Asserts that `fn` throws a MessagingError with `code` (sync or async). */
export async function expectCode(
  fn: () => unknown,
  code: MessagingErrorCode,
): Promise<MessagingError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(MessagingError);
  const err = caught as MessagingError;
  expect(err.code).toBe(code);
  return err;
}

/** Synchronous variant of {@link expectCode}. */
export function expectCodeSync(fn: () => unknown, code: MessagingErrorCode): MessagingError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(MessagingError);
  const err = caught as MessagingError;
  expect(err.code).toBe(code);
  return err;
}

/** Hex to bytes (test data only). */
export function h(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** Bytes to hex. */
export function hx(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

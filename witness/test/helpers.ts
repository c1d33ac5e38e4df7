/**
 * Test support: an independent test log (a Merkle tree and an Ed25519 note key, built with
 * `@keytrail/core` only), and a witness app over a fresh PostgreSQL database.
 * @module
 */
import { checkpoint, merkle, note, bytes, cosignature } from '@keytrail/core';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { installNodeCrypto } from '@keytrail/server-kit';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import {
  buildApp,
  formatAddCheckpointRequest,
  PgWitnessStore,
  witnessKeyFromSeed,
  type WitnessAppDeps,
  type WitnessKey,
} from '../src/index.ts';

installNodeCrypto();

/** A transparency log for tests: leaves are SHA-256(0x00 || "<tag> <i>"). */
export class TestLog {
  readonly origin: string;
  readonly signer: note.Signer & { publicKey: Uint8Array };
  readonly vkey: string;
  readonly tree = new merkle.MemoryTree();
  readonly #tag: string;

  constructor(origin: string, seedByte = 7, tag = 'leaf') {
    this.origin = origin;
    this.signer = note.ed25519Signer(origin, new Uint8Array(32).fill(seedByte));
    this.vkey = note.formatVerifierKey(origin, this.signer.publicKey);
    this.#tag = tag;
  }

  /** Appends `n` leaves; returns the new size. */
  append(n: number): number {
    for (let i = 0; i < n; i++) {
      this.tree.append(merkle.leafHash(bytes.utf8(`${this.#tag} ${String(this.tree.size)}`)));
    }
    return this.tree.size;
  }

  /** The checkpoint text of size `size` (default: current size). */
  text(size = this.tree.size): string {
    return checkpoint.format({
      origin: this.origin,
      size,
      root: this.tree.root(size),
      extensions: [],
    });
  }

  /** The signed checkpoint of size `size`. */
  note(size = this.tree.size): string {
    return note.sign(this.text(size), [this.signer]);
  }

  /** The consistency proof the witness expects (empty from 0 or for equal sizes). */
  proof(oldSize: number, newSize = this.tree.size): Uint8Array[] {
    return oldSize === 0 || oldSize === newSize ? [] : this.tree.consistencyProof(oldSize, newSize);
  }

  /** A complete add-checkpoint body. */
  body(oldSize: number, newSize = this.tree.size): string {
    return formatAddCheckpointRequest(oldSize, this.proof(oldSize, newSize), this.note(newSize));
  }
}

/** The witness key used by most tests: seed 0x42…, name `witness.test/w1`. */
export const TEST_KEY: WitnessKey = witnessKeyFromSeed(
  'witness.test/w1',
  new Uint8Array(32).fill(0x42),
);

/** A witness app on a fresh database. */
export interface WitnessFixture {
  readonly app: FastifyInstance;
  readonly store: PgWitnessStore;
  readonly tdb: TestDatabase;
  readonly key: WitnessKey;
  close(): Promise<void>;
}

/** Builds a witness over a new test database, following `logs`. */
export async function witnessFixture(
  label: string,
  logs: readonly { origin: string; vkey: string }[],
  deps: Partial<WitnessAppDeps> = {},
  tdb?: TestDatabase,
): Promise<WitnessFixture> {
  const db = tdb ?? (await createTestDatabase(label, ['witness']));
  const store = new PgWitnessStore(db.db);
  for (const l of logs) await store.addLog({ origin: l.origin, vkeys: [l.vkey] });
  const key = deps.key ?? TEST_KEY;
  const app = await buildApp({ store, db: db.db, key, rateLimit: false, ...deps });
  return {
    app,
    store,
    tdb: db,
    key,
    async close() {
      await app.close();
      if (!tdb) await db.drop();
    },
  };
}

/** POSTs an add-checkpoint body. */
export function post(
  app: FastifyInstance,
  body: string | Uint8Array,
  path = '/add-checkpoint',
  headers: Record<string, string> = { 'content-type': 'text/plain' },
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: path,
    headers,
    payload: typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body),
  });
}

/**
 * Verifies a 200 answer: one or more cosignature lines from `key` over `text`; returns the
 * timestamp of the first.
 */
export function verifyCosignature(responseBody: string, text: string, key: WitnessKey): number {
  const parsed = note.parse(`${text}\n${responseBody}`);
  const verifier = cosignature.parseVerifierKey(key.vkey);
  const mine = parsed.signatures.filter((s) => s.name === key.name && s.keyId === key.keyId);
  if (mine.length === 0) throw new Error('no cosignature from the witness key');
  return cosignature.verify(text, mine[0]!, verifier).timestamp;
}

/**
 * Test support for the directory's witness collector: a log standing in for the directory
 * (a Merkle tree and an Ed25519 note key from `@keytrail/core`), and real witnesses
 * (`@keytrail/witness`'s `buildApp`, each on its own PostgreSQL database) listening on loopback.
 * @module
 */
import { checkpoint, merkle, note, bytes } from '@keytrail/core';
import { installNodeCrypto } from '@keytrail/server-kit';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import type { FastifyInstance } from 'fastify';
import {
  buildApp,
  PgWitnessStore,
  witnessKeyFromSeed,
  type WitnessAppDeps,
  type WitnessKey,
} from '@keytrail/witness';
import type { CosignRequest } from '../../src/kt/cosigner.ts';

installNodeCrypto();

/** The log whose checkpoints get witnessed. */
export class DirLog {
  readonly origin: string;
  readonly signer: note.Signer & { publicKey: Uint8Array };
  readonly vkey: string;
  readonly tree = new merkle.MemoryTree();

  constructor(origin = 'directory.test/log', seed = 3) {
    this.origin = origin;
    this.signer = note.ed25519Signer(origin, new Uint8Array(32).fill(seed));
    this.vkey = note.formatVerifierKey(origin, this.signer.publicKey);
  }

  append(n = 1, tag = 'epoch'): number {
    for (let i = 0; i < n; i++)
      this.tree.append(merkle.leafHash(bytes.utf8(`${tag} ${String(this.tree.size)}`)));
    return this.tree.size;
  }

  text(size = this.tree.size): string {
    return checkpoint.format({
      origin: this.origin,
      size,
      root: this.tree.root(size),
      extensions: [],
    });
  }

  note(size = this.tree.size): string {
    return note.sign(this.text(size), [this.signer]);
  }

  /** What the sequencer hands the cosigner. */
  request(size = this.tree.size): CosignRequest {
    return {
      checkpoint: this.note(size),
      size,
      consistencyProof: (oldSize) => this.tree.consistencyProof(oldSize, size),
    };
  }
}

/** A real witness on loopback that can be stopped and started again on the same port. */
export class LiveWitness {
  readonly name: string;
  readonly key: WitnessKey;
  readonly tdb: TestDatabase;
  readonly deps: Partial<WitnessAppDeps>;
  app: FastifyInstance | undefined;
  port = 0;

  private constructor(
    name: string,
    key: WitnessKey,
    tdb: TestDatabase,
    deps: Partial<WitnessAppDeps>,
  ) {
    this.name = name;
    this.key = key;
    this.tdb = tdb;
    this.deps = deps;
  }

  static async create(
    name: string,
    seed: number,
    follows: readonly { origin: string; vkey: string }[],
    deps: Partial<WitnessAppDeps> = {},
  ): Promise<LiveWitness> {
    const tdb = await createTestDatabase(`witnessing_${name}`, ['witness']);
    const store = new PgWitnessStore(tdb.db);
    for (const l of follows) await store.addLog({ origin: l.origin, vkeys: [l.vkey] });
    const w = new LiveWitness(
      name,
      witnessKeyFromSeed(`${name}.witness.test`, new Uint8Array(32).fill(seed)),
      tdb,
      deps,
    );
    await w.start();
    return w;
  }

  /** A witness key that is not running anywhere (for policies with wrong keys). */
  static keyFor(name: string, seed: number): Promise<WitnessKey> {
    return Promise.resolve(
      witnessKeyFromSeed(`${name}.witness.test`, new Uint8Array(32).fill(seed)),
    );
  }

  get url(): string {
    return `http://127.0.0.1:${String(this.port)}`;
  }

  /** The tlog-policy line for this witness. */
  get policyLine(): string {
    return `witness ${this.name} ${this.key.vkey} ${this.url}`;
  }

  async start(): Promise<void> {
    this.app = await buildApp({
      store: new PgWitnessStore(this.tdb.db),
      db: this.tdb.db,
      key: this.key,
      rateLimit: false,
      ...this.deps,
    });
    await this.app.listen({ host: '127.0.0.1', port: this.port });
    const addr = this.app.server.address();
    if (addr && typeof addr === 'object') this.port = addr.port;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    this.app = undefined;
  }

  async size(origin: string): Promise<number> {
    return (await new PgWitnessStore(this.tdb.db).getState(origin))!.size;
  }

  async drop(): Promise<void> {
    await this.stop();
    await this.tdb.drop();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

/**
 * Native VRF proving on worker threads, so both cores prove while the main thread serves HTTP
 * and talks to PostgreSQL. Proofs are byte-identical to core's prover (vrf-prover.ts).
 * @module
 */
import { Worker } from 'node:worker_threads';
import { vrf } from '@keytrail/core';
import {
  createFastProver,
  type SyncVrfProver,
  type VrfOutput,
  type VrfProver,
} from './vrf-prover.ts';

interface Pending {
  resolve: (results: VrfOutput[]) => void;
  reject: (err: unknown) => void;
}

/** Batches smaller than this are proven on the calling thread (no message round trip). */
const INLINE_BELOW = 4;

/** A pool of native provers on worker threads. */
export class VrfWorkerPool implements VrfProver {
  readonly publicKey: Uint8Array;
  readonly #workers: Worker[];
  readonly #inline: SyncVrfProver;
  readonly #pending = new Map<number, Pending>();
  #next = 0;

  /**
   * @param secretKey - the VRF secret key (copied to each worker).
   * @param threads - number of workers, at least 1.
   * @param addon - prove with the native addon when it is built (else sodium-native).
   */
  constructor(secretKey: Uint8Array, threads: number, addon = true) {
    this.publicKey = vrf.publicKey(secretKey);
    this.#inline = createFastProver(secretKey, addon);
    const fromSource = import.meta.url.endsWith('.ts');
    const url = new URL(`./vrf-worker${fromSource ? '.ts' : '.js'}`, import.meta.url);
    this.#workers = Array.from({ length: Math.max(1, threads) }, () => {
      // Source runs (tsx, tests) register the TypeScript loader inside the worker first.
      const w = fromSource
        ? new Worker(
            `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`,
            {
              eval: true,
              workerData: { secretKey, addon },
              execArgv: ['--conditions=@keytrail/source'],
            },
          )
        : new Worker(url, { workerData: { secretKey, addon } });
      w.on('message', (msg: { id: number; results: VrfOutput[] }) => {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        p?.resolve(msg.results);
      });
      w.on('error', (err) => {
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
      });
      return w;
    });
  }

  #send(worker: Worker, alphas: Uint8Array[]): Promise<VrfOutput[]> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, alphas });
    });
  }

  async prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return (await this.proveWithOutputs(alphas)).map((r) => r.proof);
  }

  async proveWithOutputs(alphas: readonly Uint8Array[]): Promise<VrfOutput[]> {
    if (alphas.length < INLINE_BELOW) return this.#inline.proveMany(alphas);
    const n = this.#workers.length;
    const chunk = Math.ceil(alphas.length / n);
    const parts = await Promise.all(
      this.#workers.map((w, i) => {
        const slice = alphas.slice(i * chunk, (i + 1) * chunk);
        return slice.length === 0 ? Promise.resolve([]) : this.#send(w, slice);
      }),
    );
    return parts.flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/**
 * Worker-thread entry of {@link VrfWorkerPool}: the fastest available prover answering batches.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createFastProver } from './vrf-prover.ts';

const { secretKey, addon } = workerData as { secretKey: Uint8Array; addon: boolean };
const prover = createFastProver(secretKey, addon);
parentPort?.on('message', (msg: { id: number; alphas: Uint8Array[] }) => {
  const results = prover.proveMany(msg.alphas);
  parentPort?.postMessage({ id: msg.id, results });
});

/**
 * Worker-thread entry of {@link VrfWorkerPool}: a {@link NativeVrfProver} answering batches.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NativeVrfProver } from './vrf-prover.ts';

const { secretKey } = workerData as { secretKey: Uint8Array };
const prover = new NativeVrfProver(secretKey);
parentPort?.on('message', (msg: { id: number; alphas: Uint8Array[] }) => {
  const proofs = msg.alphas.map((a) => prover.proveOne(a));
  parentPort?.postMessage({ id: msg.id, proofs });
});

/**
 * ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381) benchmarks, pure JavaScript on `@noble/curves`:
 * prove and verify per second beside `@noble/curves` Ed25519 verify measured in the same run.
 * Target: one VRF verification costs at most 2× one noble Ed25519 verification.
 *
 * The machines are shared and often loaded, so the cost ratio comes from paired measurements of
 * process CPU time (Ed25519 batch, then VRF batch, alternately), reported as the median pair.
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import * as vrf from '../src/vrf.ts';
import { fmt, report, type Bench } from '../../../scripts/bench-util.ts';

/** CPU time (user + system) of one call, in milliseconds. */
function cpuMs(fn: () => unknown): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

const N = 60;
const ROUNDS = 5;

const bench: Bench = () => {
  const sk = ed25519.utils.randomSecretKey();
  const pk = vrf.publicKey(sk);
  const alphas = Array.from({ length: N }, (_, i) => new TextEncoder().encode(`label-${i}`));
  const proofs = alphas.map((a) => vrf.prove(sk, a));
  const sigs = alphas.map((a) => ed25519.sign(a, sk));
  const edVerify = (): void => {
    for (let i = 0; i < N; i++) {
      if (!ed25519.verify(sigs[i] as Uint8Array, alphas[i] as Uint8Array, pk))
        throw new Error('bad');
    }
  };
  const vrfVerify = (): void => {
    for (let i = 0; i < N; i++) vrf.verify(pk, alphas[i] as Uint8Array, proofs[i] as Uint8Array);
  };
  const vrfProve = (): void => {
    for (let i = 0; i < N; i++) vrf.prove(sk, alphas[i] as Uint8Array);
  };
  // Warm up every path before measuring.
  edVerify();
  vrfVerify();
  vrfProve();

  const ed: number[] = [];
  const ver: number[] = [];
  const prv: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const e = cpuMs(edVerify);
    const v = cpuMs(vrfVerify);
    const p = cpuMs(vrfProve);
    ed.push(e);
    ver.push(v);
    prv.push(p);
    ratios.push(v / e);
  }
  const perSecond = (ms: number): number => (N * 1000) / ms;
  report('noble Ed25519 verify (baseline, CPU)', `${fmt(perSecond(median(ed)))} /s`);
  report(
    'ECVRF verify (CPU)',
    `${fmt(perSecond(median(ver)))} /s`,
    `${fmt(median(ratios), 2)}× the cost of one Ed25519 verify (target ≤ 2×)`,
  );
  report(
    'ECVRF prove (CPU)',
    `${fmt(perSecond(median(prv)))} /s`,
    `${fmt(median(prv) / median(ed), 2)}× the cost of one Ed25519 verify`,
  );
  return Promise.resolve();
};

export default bench;

/**
 * Benchmark helpers. The machines are shared and noisy, so every figure is printed beside a
 * raw baseline measured in the same run and read as a ratio.
 * @module
 */
import { hash } from 'node:crypto';

/** Runs `fn` repeatedly for at least `minMs` (after a warm-up) and returns calls per second. */
export function opsPerSecond(fn: () => unknown, minMs = 1000): number {
  const warmEnd = performance.now() + Math.min(200, minMs / 4);
  while (performance.now() < warmEnd) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < minMs) {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

/** Like {@link opsPerSecond} for async work, one call at a time. */
export async function opsPerSecondAsync(fn: () => Promise<unknown>, minMs = 1000): Promise<number> {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    await fn();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}

/** Wall time of one call, in milliseconds. */
export async function timeMs(fn: () => unknown): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Percentile of a list of numbers (0 ≤ p ≤ 100). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? NaN;
}

/** The machine's raw native SHA-256 call rate on 65-byte inputs (a Merkle node). */
export function baselineSha256(minMs = 1000): number {
  const buf = new Uint8Array(65);
  return opsPerSecond(() => hash('sha256', buf, 'buffer'), minMs);
}

/** Formats a rate with thousands separators. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** Prints one result line: name, figure, and its ratio to a baseline. */
export function report(name: string, value: string, comparison?: string): void {
  console.log(`  ${name.padEnd(58)} ${value.padStart(18)}${comparison ? `   ${comparison}` : ''}`);
}

/** A benchmark module: `bench/*.bench.ts` in any workspace exports one as default. */
export type Bench = () => Promise<void>;

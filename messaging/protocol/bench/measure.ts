/**
 * Measuring helpers shared by the messaging benchmarks: the machines are shared and noisy, so
 * measurements are interleaved and their medians reported.
 * @module
 */

/** The median of a list (NaN for an empty one). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Runs the measurements in turn, `rounds` times, and returns each one's median. */
export async function interleaved(
  fns: readonly (() => Promise<number>)[],
  rounds: number,
): Promise<number[]> {
  const results: number[][] = fns.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++)
      results[i]?.push(await (fns[i] ?? (() => Promise.resolve(NaN)))());
  }
  return results.map(median);
}

/**
 * A progress bar on stderr when it is a terminal, silent otherwise (piped output, CI, tests).
 * Redraws at most ten times a second so that drawing never costs replay time.
 * @module
 */

/** Receives progress from a long-running command. */
export interface Progress {
  /** Starts (or restarts) a phase with a known total. */
  start(phase: string, total: number): void;
  /** Reports `done` of the phase's total, with an optional rate unit (per second). */
  update(done: number, extra?: string): void;
  /** Ends the bar and clears its line. */
  stop(): void;
}

/** A progress sink that prints nothing. */
export const SILENT_PROGRESS: Progress = {
  start: () => undefined,
  update: () => undefined,
  stop: () => undefined,
};

/** A writable terminal stream, as `process.stderr` is. */
export interface TtyStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

/** A bar drawn on `stream` if it is a TTY; {@link SILENT_PROGRESS} otherwise. */
export function progressFor(stream: TtyStream, enabled = true): Progress {
  if (!enabled || stream.isTTY !== true) return SILENT_PROGRESS;
  let phase = '';
  let total = 0;
  let last = 0;
  let started = 0;
  let drawn = false;
  const draw = (done: number, extra: string): void => {
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 60));
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const fill = Math.round(frac * width);
    const secs = (performance.now() - started) / 1000;
    const rate = secs > 0 ? Math.round(done / secs) : 0;
    const line =
      `${phase.padEnd(10)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ` +
      `${done}/${total} ${rate}/s${extra ? ` ${extra}` : ''}`;
    stream.write(`\r\x1b[2K${line}`);
    drawn = true;
  };
  return {
    start(p, t) {
      phase = p;
      total = t;
      started = performance.now();
      last = 0;
    },
    update(done, extra = '') {
      const now = performance.now();
      if (now - last < 100 && done < total) return;
      last = now;
      draw(done, extra);
    },
    stop() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

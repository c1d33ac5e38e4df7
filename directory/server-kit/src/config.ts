/**
 * Configuration from environment variables, with one clear error naming every bad value.
 * Values are never echoed for variables whose names suggest secrets.
 * @module
 */

/** Thrown when one or more environment variables are invalid. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

// Whole words of the variable's name, so that KEYTRAIL_PORT is shown and ADMIN_TOKEN is not.
const SECRET_RE = /(^|_)(SECRET|TOKEN|PASSWORD|PASSPHRASE|KEY|URL|DSN)(_|$)/;

/**
 * A reader over an environment. Each getter records a problem instead of throwing, so that
 * {@link EnvReader.done} can report every bad value at once.
 */
export class EnvReader {
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #problems: string[] = [];

  constructor(env: Readonly<Record<string, string | undefined>>) {
    this.#env = env;
  }

  #raw(name: string): string | undefined {
    const v = this.#env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  #show(name: string, value: string): string {
    return SECRET_RE.test(name) ? '(value hidden)' : JSON.stringify(value);
  }

  /** Records a problem found by the caller's own validation. */
  problem(message: string): void {
    this.#problems.push(message);
  }

  string(name: string): string | undefined;
  string(name: string, fallback: string): string;
  string(name: string, fallback?: string): string | undefined {
    return this.#raw(name) ?? fallback;
  }

  /** An integer in [min, max]. */
  int(name: string, fallback: number, min: number, max: number): number {
    const raw = this.#raw(name);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      this.#problems.push(
        `${name}=${this.#show(name, raw)}: expected a whole number from ${min} to ${max}`,
      );
      return fallback;
    }
    return Number(raw);
  }

  /** `true/false/1/0/yes/no`. */
  bool(name: string, fallback: boolean): boolean {
    const raw = this.#raw(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    this.#problems.push(`${name}=${this.#show(name, raw)}: expected true or false`);
    return fallback;
  }

  /** An absolute URL with one of the given protocols. */
  url(name: string, protocols: readonly string[]): string | undefined {
    const raw = this.#raw(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) {
        this.#problems.push(`${name}: expected a URL starting with ${protocols.join(' or ')}`);
        return undefined;
      }
      return raw;
    } catch {
      this.#problems.push(`${name}: not a valid URL`);
      return undefined;
    }
  }

  /** One of a fixed set of words. */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.#raw(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      this.#problems.push(
        `${name}=${this.#show(name, raw)}: expected one of ${allowed.join(', ')}`,
      );
      return fallback;
    }
    return raw as T;
  }

  /** A comma-separated list. */
  list(name: string): string[] {
    const raw = this.#raw(name);
    return raw === undefined
      ? []
      : raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  }

  /** Throws a {@link ConfigError} naming every problem recorded so far. */
  done(): void {
    if (this.#problems.length > 0) throw new ConfigError(this.#problems);
  }
}

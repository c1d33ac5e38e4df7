import { describe, expect, it } from 'vitest';
import { EnvReader, ConfigError } from '../src/index.ts';

describe('EnvReader', () => {
  it('reads valid values and falls back to defaults', () => {
    const env = new EnvReader({
      PORT: '8080',
      DEBUG: 'yes',
      MODE: 'b',
      LIST: 'a, b,,c',
      EMPTY: '  ',
    });
    expect(env.int('PORT', 1, 1, 65535)).toBe(8080);
    expect(env.int('OTHER', 7, 1, 10)).toBe(7);
    expect(env.bool('DEBUG', false)).toBe(true);
    expect(env.oneOf('MODE', ['a', 'b'], 'a')).toBe('b');
    expect(env.list('LIST')).toEqual(['a', 'b', 'c']);
    expect(env.string('EMPTY', 'dflt')).toBe('dflt');
    expect(() => {
      env.done();
    }).not.toThrow();
  });

  it('reports every bad value at once and hides secret values', () => {
    const env = new EnvReader({
      PORT: '99999',
      DEBUG: 'maybe',
      ADMIN_TOKEN: 'hunter2',
      DATABASE_URL: 'nope',
    });
    env.int('PORT', 1, 1, 65535);
    env.bool('DEBUG', false);
    env.int('ADMIN_TOKEN', 0, 0, 1);
    env.url('DATABASE_URL', ['postgres:', 'postgresql:']);
    let err: unknown;
    try {
      env.done();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems[0]).toMatch(/^PORT="99999": expected a whole number from 1 to 65535$/);
    expect(problems[1]).toMatch(/^DEBUG="maybe"/);
    expect(problems.join('\n')).not.toContain('hunter2');
    expect(problems[3]).toBe('DATABASE_URL: not a valid URL');
  });

  it('shows values of variables whose names merely contain a secret word', () => {
    const env = new EnvReader({ KEYTRAIL_PORT: 'x', MONKEYS: 'y', SIGNING_KEY_FILE: 'z' });
    env.int('KEYTRAIL_PORT', 1, 1, 2);
    env.int('MONKEYS', 1, 1, 2);
    env.int('SIGNING_KEY_FILE', 1, 1, 2);
    expect(() => {
      env.done();
    }).toThrow(/KEYTRAIL_PORT="x".*\n.*MONKEYS="y".*\n.*SIGNING_KEY_FILE=\(value hidden\)/s);
  });
});

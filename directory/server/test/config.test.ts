/**
 * Configuration from the environment: defaults, and one clear error naming every bad value
 * (secrets never echoed).
 */
import { describe, it, expect } from 'vitest';
import { ConfigError } from '@keytrail/server-kit';
import { loadConfig } from '../src/config.ts';

describe('loadConfig', () => {
  it('has defaults for everything', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8787,
      host: '127.0.0.1',
      epochMs: 1000,
      epochMaxUpdates: 10_000,
      sequencer: true,
      vrfAddon: true,
    });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.dataDir).toMatch(/\.keytrail\/directory$/);
  });

  it('names every bad value at once and hides secrets', () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: '70000',
        EPOCH_MS: 'soon',
        DATABASE_URL: 'mysql://x',
        ADMIN_TOKEN: 'short',
        ORIGIN: 'has space',
        SEQUENCER: 'maybe',
        KT_VRF_ADDON: 'sometimes',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of [
      'PORT',
      'EPOCH_MS',
      'DATABASE_URL',
      'ADMIN_TOKEN',
      'ORIGIN',
      'SEQUENCER',
      'KT_VRF_ADDON',
    ]) {
      expect(problems).toContain(name);
    }
    expect(problems).not.toContain('short');
  });
});

/**
 * The Chromium vector run (STYLE.md §2 and §8 step 9): bundles `core-vectors.entry.ts` for the
 * browser with esbuild, the way `npm run check:bundles` does (platform browser, the
 * `@keytrail/source` condition, so no Node built-ins can slip in), injects every vector file of
 * `directory/core/test/vectors/`, runs it in Debian's headless Chromium through playwright-core
 * with a fresh profile, and requires every known-answer check to pass.
 * @module
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VectorResult } from './core-vectors.entry.ts';

const CHROMIUM = '/usr/bin/chromium';
const here = fileURLToPath(new URL('.', import.meta.url));
const vectorsDir = join(here, '..', '..', 'directory', 'core', 'test', 'vectors');

interface RunOutput {
  files: string[];
  backend: string;
  results: VectorResult[];
}

/** Serves every vector file as the virtual module `keytrail:core-vectors`. */
function vectorsPlugin(files: Record<string, unknown>): Plugin {
  return {
    name: 'keytrail-core-vectors',
    setup(b) {
      b.onResolve({ filter: /^keytrail:core-vectors$/ }, (args) => ({
        path: args.path,
        namespace: 'keytrail-vectors',
      }));
      b.onLoad({ filter: /.*/, namespace: 'keytrail-vectors' }, () => ({
        contents: JSON.stringify(files),
        loader: 'json',
      }));
    },
  };
}

describe('core known-answer vectors in headless Chromium', () => {
  let context: BrowserContext | undefined;
  let profile = '';
  let output: RunOutput | undefined;
  let vectorFiles: string[] = [];

  beforeAll(async () => {
    vectorFiles = readdirSync(vectorsDir)
      .filter((f) => f.endsWith('.json'))
      .sort();
    const files: Record<string, unknown> = {};
    for (const f of vectorFiles) files[f] = JSON.parse(readFileSync(join(vectorsDir, f), 'utf8'));

    const bundle = await build({
      entryPoints: [join(here, 'core-vectors.entry.ts')],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      conditions: ['@keytrail/source'],
      plugins: [vectorsPlugin(files)],
    });
    const code = bundle.outputFiles[0]?.text ?? '';

    profile = mkdtempSync(join(tmpdir(), 'keytrail-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto('about:blank');
    await page.addScriptTag({ content: code });
    output = (await page.evaluate(
      () => (globalThis as { __keytrailCoreVectors?: unknown }).__keytrailCoreVectors,
    )) as RunOutput | undefined;
    if (output === undefined) {
      throw new Error(
        `the bundle did not report results: ${pageErrors.join('; ') || 'no page error'}`,
      );
    }
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    if (profile !== '') rmSync(profile, { recursive: true, force: true });
  });

  it('ran in the browser on the noble backend, with every vector file present', () => {
    expect(output?.backend).toBe('noble');
    expect(output?.files).toEqual(vectorFiles);
    expect(vectorFiles).toContain('ecvrf-rfc9381.json');
    expect(vectorFiles).toContain('prefix-tree.json');
  });

  it('passes every vector', () => {
    const results = output?.results ?? [];
    const failures = results.filter((r) => !r.ok);
    expect(
      failures.map((f) => `${f.name}${f.detail === undefined ? '' : ` — ${f.detail}`}`),
      `${failures.length} of ${results.length} browser vector checks failed`,
    ).toEqual([]);
    expect(results.length).toBeGreaterThan(0);
    // Every vector file, and every family of inline vectors, contributed checks.
    for (const file of vectorFiles) {
      expect(results.filter((r) => r.file === file).length, file).toBeGreaterThan(0);
    }
    for (const family of [
      'ecvrf:',
      'prefix-tree:',
      'prefix-tree tampered:',
      'commitment:',
      'epoch record:',
    ]) {
      expect(results.filter((r) => r.name.startsWith(family)).length, family).toBeGreaterThan(0);
    }
    const perFile = vectorFiles.map((f) => `${f} ${results.filter((r) => r.file === f).length}`);
    console.log(
      `browser vector checks: ${results.length} (${perFile.join(', ')}, inline ${results.filter((r) => r.file === 'inline').length})`,
    );
  });
});

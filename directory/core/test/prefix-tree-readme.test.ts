import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Runs the examples of the README sections for vrf, prefixTree, commitment, encoding and epoch,
// so the documentation cannot drift from the code: each section's ```ts blocks are joined,
// written next to this file and imported (they throw if what they claim does not hold).
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

function section(name: string): string {
  const start = readme.indexOf(`\n## ${name}\n`);
  if (start < 0) throw new Error(`README has no "## ${name}" section`);
  const end = readme.indexOf('\n## ', start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

function snippets(name: string): string[] {
  return [...section(name).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

describe('README examples', () => {
  it.each(['vrf', 'prefixTree', 'commitment', 'encoding', 'epoch'])('## %s runs', async (name) => {
    const code = snippets(name);
    expect(code.length).toBeGreaterThan(0);
    const file = new URL(`./.readme-${name}-${process.pid}.snippet.ts`, import.meta.url);
    writeFileSync(file, code.join('\n'));
    try {
      await import(file.href);
    } finally {
      rmSync(file, { force: true });
    }
  });
});

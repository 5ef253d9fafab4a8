// Guards the one-way dependency flow documented in docs/ARCHITECTURE.md:
// cli → engine → (transfer, images, layers) → drivers → archive → sys → native.
// A module may import only the modules listed for it; type-only imports count too,
// because a type dependency is still a design dependency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(repo, 'src');

const base = ['errors', 'digest', 'package-files'];
const allowed: Record<string, string[]> = {
  errors: [],
  'package-files': [],
  digest: ['errors'],
  native: ['package-files'],
  sys: [...base, 'native'],
  archive: [...base, 'native', 'sys'],
  drivers: [...base, 'native', 'sys', 'archive'],
  layers: [...base, 'native', 'sys', 'archive', 'drivers'],
  images: [...base, 'native', 'sys'],
  transfer: [...base, 'native', 'sys', 'archive', 'images'],
  volumes: [...base, 'native', 'sys'],
  distribution: [...base, 'native', 'sys', 'archive', 'images'],
  build: [...base, 'sys', 'archive', 'images'],
  runtime: [...base, 'native', 'sys'],
  containers: [...base, 'native', 'sys'],
  network: [...base, 'native', 'sys'],
  engine: [...base, 'native', 'sys', 'archive', 'drivers', 'layers', 'images', 'transfer', 'volumes', 'runtime', 'distribution', 'build', 'containers', 'network'],
  index: [...base, 'engine', 'images', 'layers', 'drivers', 'archive', 'transfer', 'volumes', 'runtime', 'distribution', 'build'],
  // The CLI is a thin shell over the library: it talks to the engine only.
  cli: [...base, 'engine'],
};

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function moduleOf(file: string): string {
  const rel = relative(src, file).split(sep);
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
}

const IMPORT_RE = /(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

test('source modules import only what the dependency rules allow', () => {
  const violations: string[] = [];
  const files = walk(src);
  assert.ok(files.length > 10, 'expected to find the source tree');
  for (const file of files) {
    const from = moduleOf(file);
    const rules = allowed[from];
    if (!rules) {
      violations.push(`${relative(repo, file)}: module "${from}" has no dependency rule; add it to test/architecture.test.ts and docs/ARCHITECTURE.md`);
      continue;
    }
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('.')) continue; // node: builtins and packages
      const target = moduleOf(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      if (target === from) continue;
      if (!rules.includes(target)) violations.push(`${relative(repo, file)} (${from}) imports ${spec} (${target})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the rule checker itself catches a forbidden import', () => {
  const text = "import type { Driver } from '../drivers/driver.js';";
  const m = [...text.matchAll(IMPORT_RE)];
  assert.equal(m.length, 1);
  assert.equal(moduleOf(resolve(src, 'images', m[0]![1]!.replace(/\.js$/, '.ts'))), 'drivers');
  assert.ok(!allowed.images!.includes('drivers'));
});

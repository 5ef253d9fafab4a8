// Bundles the CLI (tsc's output under dist/src) into one CommonJS file, dist/cli/strata.cjs,
// and primes its V8 code cache. A strata command then reads two files instead of resolving,
// reading and compiling ~60 ES modules: on our 2-core VM that is ~25 ms of every command.
// Run by `npm run build:ts`, so the bundle never lags behind the per-file build.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/cli/strata.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The loader runs the bundle through vm.Script, which cannot import(): built-ins loaded on
  // demand with import() become require() calls.
  supported: { 'dynamic-import': false },
  // Modules find package files from import.meta.url (src/package-files.ts); the bundle sits as
  // deep below the package root as dist/src/package-files.js, so its own URL serves.
  define: { 'import.meta.url': '__strataBundleUrl' },
  banner: { js: 'const __strataBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true,
  keepNames: true,
  logLevel: 'warning',
});

// The loader compiles the bundle with vm.Script, which has no loader for a real import():
// every dynamic import of ours must have been inlined.
const leftover = readFileSync(join(root, 'dist/cli/strata.cjs'), 'utf8').match(/(?<![.\w$])import\(\s*["'`][^"'`]+/);
if (leftover) throw new Error(`the CLI bundle still has a dynamic ${leftover[0]}: import it statically`);

// The cache holds the functions compiled while these commands ran, so it covers the start-up
// path and the listing commands; anything else compiles on demand as usual.
const dataRoot = mkdtempSync(join(tmpdir(), 'strata-prime-'));
try {
  const commands = [['--help'], ['ps', '-a'], ['images'], ['volume', 'ls'], ['run', '--help'], ['inspect', 'none']];
  const r = spawnSync(process.execPath, [join(root, 'bin', 'strata.cjs')], {
    env: { ...process.env, STRATA_ROOT: dataRoot, STRATA_CLI_PRIME: JSON.stringify(commands) },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`priming the CLI code cache failed (status ${r.status}): ${r.stderr}`);
} finally {
  rmSync(dataRoot, { recursive: true, force: true });
}

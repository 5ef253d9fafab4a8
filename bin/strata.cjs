// Loads the bundled CLI (dist/cli/strata.cjs, made by scripts/bundle-cli.mjs) through V8's
// code cache, so a command skips parsing and compiling what it ran last time. A cache that
// V8 rejects (another Node version) or that is missing is rewritten after the command, when
// the package directory is writable; nothing else is ever written here.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire, wrap } = require('node:module');

const bundle = path.join(__dirname, '..', 'dist', 'cli', 'strata.cjs');
const cacheFile = `${bundle}.v8cache`;

function loadBundle() {
  const source = fs.readFileSync(bundle, 'utf8');
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(wrap(source), { filename: bundle, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
  const stale = cachedData === undefined || script.cachedDataRejected === true;
  return { main: module.exports.main, script, stale };
}

function saveCache(script) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, script.createCachedData());
    fs.renameSync(tmp, cacheFile);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

async function run() {
  const { main, script, stale } = loadBundle();
  const prime = process.env.STRATA_CLI_PRIME;
  if (prime) {
    delete process.env.STRATA_CLI_PRIME;
    for (const argv of JSON.parse(prime)) await main(argv);
    saveCache(script);
    return 0;
  }
  const status = await main(process.argv.slice(2));
  if (stale) saveCache(script);
  return status;
}

run().then((status) => {
  process.exitCode = status;
});

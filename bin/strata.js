#!/usr/bin/env node
// The strata CLI. Everything lives in dist/src/cli/main.js (built with `npm run build:ts`).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));

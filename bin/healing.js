#!/usr/bin/env node
// The package ships TypeScript and runs it through tsx, so `npx healing` works right after `npm ci`
// with no build step to forget. Both hooks: a few modules are loaded with require() (see
// src/analysis/report.ts), which only tsx's CommonJS hook resolves to .ts files.
import { register } from 'tsx/esm/api';
import { register as registerCommonJs } from 'tsx/cjs/api';

register();
registerCommonJs();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

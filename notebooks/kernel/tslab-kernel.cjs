#!/usr/bin/env node
/*
 * The healing-bert Jupyter kernel: tslab, started so that notebooks load the project's src/ the way
 * the CLI does (ESM, through tsx) instead of through tslab's own CommonJS compilation.
 *
 * Why: tslab type-checks a cell together with every local .ts file it imports, and then runs its own
 * CommonJS build of those files. That build breaks on ESM-only code (import.meta.url in
 * src/version.ts: "exports is not defined in ES module scope", since package.json says
 * "type": "module"), and tslab's compiler refuses files outside the kernel's working directory
 * ("not under rootDir"), which the notebook directory is not a parent of. So this wrapper
 *  1. runs the kernel in the repository root (cells import "./src/...", paths resolve like the CLI's),
 *  2. registers tsx's require hook, so `require('./src/x')` loads the real .ts module (Node >= 20.19
 *     can require ESM-only packages such as hyparquet),
 *  3. drops tslab's "side outputs" (its CommonJS builds of local files), so its require falls through
 *     to Node + tsx. tslab still type-checks cells against src/, so completion and errors keep working;
 *  4. turns off the TypeScript file watchers: a file created or edited under src/ while the kernel
 *     runs made tslab's single-slot rebuild timer throw ("Unexpected pending rebuildTimer") and fail
 *     every later cell. Node caches loaded modules anyway, so after editing src/ restart the kernel.
 * Depends on tslab internals (dist/converter.js createConverter/convert); tslab is pinned in package.json.
 */
const path = require('node:path');
const { createRequire } = require('node:module');

const root = path.resolve(__dirname, '..', '..');
process.chdir(root);
const requireFromRoot = createRequire(path.join(root, 'package.json'));
requireFromRoot('tsx/cjs/api').register();

const requireFromTslab = createRequire(requireFromRoot.resolve('tslab/package.json'));
const ts = requireFromTslab('@tslab/typescript-for-tslab');
const noWatch = () => ({ close() {} });
ts.sys.watchFile = noWatch;
ts.sys.watchDirectory = noWatch;

const converter = requireFromRoot('tslab/dist/converter.js');
if (typeof converter.createConverter !== 'function') {
  throw new Error('healing-bert kernel: tslab/dist/converter.js has no createConverter; the tslab version changed, see notebooks/kernel/tslab-kernel.cjs');
}
const createConverter = converter.createConverter;
converter.createConverter = (options) => {
  const conv = createConverter(options);
  const convert = conv.convert;
  conv.convert = (prevDecl, src) => {
    const out = convert(prevDecl, src);
    delete out.sideOutputs;
    return out;
  };
  return conv;
};

requireFromRoot('tslab/dist/main.js').main();

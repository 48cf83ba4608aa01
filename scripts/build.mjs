// Builds the package entry point for plain Node: dist/index.js (one ESM bundle of src/index.ts; every
// package under node_modules stays an import) beside the declarations tsc writes (tsconfig.build.json).
// The repository's own tools keep running the TypeScript through tsx; only consumers need this.
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';
import { relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const outdir = resolve(root, 'dist');

// Modules find their data beside themselves (new URL('../../data/models/', import.meta.url)), and a
// bundle would move them all to dist/. Each module's import.meta.url is rewritten to the URL of its own
// source file, which the package ships (bin/healing runs it), so every such path resolves as in the repo.
const ownUrl = {
  name: 'own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const fromDist = relative(outdir, args.path).split('\\').join('/');
      return {
        contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromDist)}, import.meta.url).href`),
        loader: 'ts',
      };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [resolve(root, 'src/index.ts')],
  outfile: resolve(outdir, 'index.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  plugins: [ownUrl],
  logLevel: 'warning',
});

import { readFileSync } from 'node:fs';
import { createIdentityResolver, identityHash } from '../../src/experiment/identity';
import { ExperimentSpecSchema, type ExperimentSpec } from '../../src/experiment/spec';

/** Specs for small fake grids: distinct seeds keep them distinct. */
export function fakeSpecs(n: number, dataset = 'sst2'): ExperimentSpec[] {
  return Array.from({ length: n }, (_, seed) => ExperimentSpecSchema.parse({ model: 'tiny', dataset: { name: dataset }, seed }));
}

/** The identity hash each spec runs under now in this process (what its stored row's hash must be). */
export async function identityHashes(specs: readonly ExperimentSpec[], numerics?: string): Promise<string[]> {
  const resolve = createIdentityResolver(numerics ? { numerics } : {});
  return Promise.all(specs.map(async (s) => identityHash(await resolve(s))));
}

/** The `hash` of every line of a store that is JSON, duplicates included. */
export function rawHashes(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line).hash as string];
      } catch {
        return [];
      }
    });
}

import { join } from 'node:path';
import type { CorruptionMode } from '../corruption/spec';
import { specHash } from '../experiment/hash';
import { modelFingerprint } from '../experiment/identity';
import { COMPONENT_STUDY, FEW_SAMPLE_REINIT, PAPER_SEEDS } from '../experiment/presets';
import { ExperimentSpecSchema, type ExperimentSpec, type ExperimentSpecInput, type ResultRow } from '../experiment/spec';
import { DEFAULT_RESULTS_FILE } from '../experiment/store';
import { resolveModelDir } from '../io/models';
import { ensureResults, notebookParameters, QUICK_RESULTS_DIR, type EnsureOutcome, type NotebookParameters } from './study';

/**
 * Notebook 09 (beyond the paper): its parameters, its specs and its rows. Full mode is exactly the
 * `few-sample-reinit` and `components` presets (same specs, same hashes), read from
 * data/results/beyond-the-paper.jsonl, with the clean and whole-layer runs the components preset leaves
 * to the paper preset read from data/results/results.jsonl; missing runs are named with the command
 * that records them. Quick mode runs a tiny version of both grids on the tiny model.
 */

export const BEYOND_RESULTS_FILE = join('data', 'results', 'beyond-the-paper.jsonl');

export interface BeyondParameters extends NotebookParameters {
  /** (a) Zhang et al.: top-K re-initialisation plus the pooler, per training size and mode. */
  fewSample: { dataset: string; trainSizes: number[]; topLayers: number[]; modes: CorruptionMode[] };
  /** (b) one component of bottom:K / top:K at a time, at `trainSize`; `wholeLayers` adds the whole-layer runs beside them. */
  components: { datasets: string[]; layers: string[]; components: Array<(typeof COMPONENT_STUDY.components)[number]>; wholeLayers: boolean };
  /** Stores also read (never written) for the clean and whole-layer runs (the paper preset's). */
  referenceFiles: string[];
}

/** notebookParameters' mode, model and workers, with the two studies' grids; overrides win. */
export function beyondParameters(overrides: Partial<BeyondParameters> = {}): BeyondParameters {
  const base = notebookParameters(overrides);
  const components = { datasets: [...COMPONENT_STUDY.datasets], layers: [...COMPONENT_STUDY.layers], components: [...COMPONENT_STUDY.components] };
  const own: Omit<BeyondParameters, keyof NotebookParameters> & Partial<NotebookParameters> = base.quick
    ? {
        // Two seeds (the fewest with an interval), one K, 1 epoch on 32-64 examples: a few seconds a run.
        seeds: [0, 1],
        trainSize: 64,
        evalSize: 64,
        maxLength: 32,
        epochs: 1,
        resultsFile: join(QUICK_RESULTS_DIR, `beyond-${base.model.replace(/[^\w.-]+/g, '_')}.jsonl`),
        fewSample: { dataset: FEW_SAMPLE_REINIT.dataset, trainSizes: [32, 64], topLayers: [1], modes: [...FEW_SAMPLE_REINIT.modes] },
        components: { ...components, wholeLayers: false },
        referenceFiles: [],
      }
    : {
        // The seeds both presets run (the paper preset runs more on some datasets; these are among them).
        seeds: [...PAPER_SEEDS],
        resultsFile: BEYOND_RESULTS_FILE,
        fewSample: { dataset: FEW_SAMPLE_REINIT.dataset, trainSizes: [...FEW_SAMPLE_REINIT.trainSizes], topLayers: [...FEW_SAMPLE_REINIT.topLayers], modes: [...FEW_SAMPLE_REINIT.modes] },
        components: { ...components, wholeLayers: true },
        referenceFiles: [DEFAULT_RESULTS_FILE],
      };
  return { ...base, ...own, ...overrides, quick: base.quick, model: base.model };
}

export interface BeyondSpecs {
  /** (a): per training size, clean plus top:K with the pooler in each mode. */
  fewSample: ExperimentSpec[];
  /** (b): one component of each side. */
  components: ExperimentSpec[];
  /** (b)'s clean runs and (when asked) whole-layer runs: the paper preset's specs in full mode. */
  reference: ExperimentSpec[];
}

/** The specs of both studies; with the full parameters they are the presets' own (test/beyond.test.ts). */
export function beyondSpecs(P: BeyondParameters): BeyondSpecs {
  const build = (dataset: string, trainSize: number, corruption: ExperimentSpecInput['corruption'], seed: number): ExperimentSpec =>
    ExperimentSpecSchema.parse({
      model: P.model,
      dataset: { name: dataset, trainSize, evalSize: P.evalSize, maxLength: P.maxLength },
      corruption,
      recipe: { epochs: P.epochs },
      seed,
    });
  const { fewSample: a, components: b } = P;
  const topK: Array<ExperimentSpecInput['corruption']> = [null];
  for (const mode of a.modes) for (const k of a.topLayers) topK.push({ layers: `top:${k}`, components: ['all', 'pooler'], mode });
  const fewSample = a.trainSizes.flatMap((size) => topK.flatMap((c) => P.seeds.map((seed) => build(a.dataset, size, c, seed))));
  const components = b.datasets.flatMap((dataset) =>
    b.layers.flatMap((layers) => b.components.flatMap((component) => P.seeds.map((seed) => build(dataset, P.trainSize, { layers, components: [component] }, seed)))),
  );
  const references: Array<ExperimentSpecInput['corruption']> = [null, ...(b.wholeLayers ? b.layers.map((layers) => ({ layers })) : [])];
  const reference = b.datasets.flatMap((dataset) => references.flatMap((c) => P.seeds.map((seed) => build(dataset, P.trainSize, c, seed))));
  return { fewSample, components, reference };
}

export interface BeyondStudy {
  /** Rows for (a) and for (b) (each with its clean runs), in spec order. */
  fewSampleRows: ResultRow[];
  componentRows: ResultRow[];
  /** Specs with no row (of the model's current weights, when the model is here to tell). */
  missing: { fewSample: ExperimentSpec[]; components: ExperimentSpec[]; reference: ExperimentSpec[] };
  /** What the notebook prints: what is recorded, and for what is not, the command that records it. */
  messages: string[];
  outcome: EnsureOutcome;
}

/** The commands that record the full runs, named where rows are missing. */
export function recordCommands(P: Pick<BeyondParameters, 'resultsFile' | 'model' | 'components'>): { fewSample: string; components: string; reference: string } {
  const model = P.model === 'default' ? '' : ` --model ${P.model}`;
  return {
    fewSample: `npx healing run --preset few-sample-reinit${model} --results ${P.resultsFile}`,
    components: `npx healing run --preset components${model} --results ${P.resultsFile}`,
    reference: `npx healing run --preset paper${model} --datasets ${P.components.datasets.join(',')} (the paper preset's clean${P.components.wholeLayers ? ' and whole-layer' : ''} runs, into ${DEFAULT_RESULTS_FILE})`,
  };
}

/** The model's fingerprint as it is now, or undefined when it is not here. */
async function fingerprintNow(model: string): Promise<string | undefined> {
  try {
    return await modelFingerprint(await resolveModelDir(model));
  } catch {
    return undefined;
  }
}

/**
 * Both studies' rows. Reference specs are looked up in `referenceFiles` first (rows of the model's
 * current weights only), the rest in `resultsFile`, where runMissing runs what is missing (quick mode).
 * Never fails for missing rows: it says "not recorded yet: run ..." instead.
 */
export async function loadBeyond(P: BeyondParameters, options: { log?: ((line: string) => void) | false } = {}): Promise<BeyondStudy> {
  const log = options.log === false ? () => {} : options.log ?? ((line: string) => console.log(line));
  const specs = beyondSpecs(P);
  const fingerprint = await fingerprintNow(P.model);
  const current = (row: ResultRow) => {
    const f = (row as { modelFingerprint?: string }).modelFingerprint;
    return fingerprint === undefined || f === undefined || f === fingerprint;
  };
  const fromReference = new Map<string, ResultRow>();
  for (const file of P.referenceFiles) {
    const wanted = specs.reference.filter((s) => !fromReference.has(specHash(s)));
    if (!wanted.length) break;
    const found = await ensureResults(wanted, { resultsFile: file, runMissing: false, log: false });
    for (const row of found.rows.filter(current)) fromReference.set(specHash(row.spec), row);
  }
  const seen = new Set<string>();
  const own = [...specs.fewSample, ...specs.components, ...specs.reference].filter((s) => {
    const key = specHash(s);
    if (seen.has(key) || fromReference.has(key)) return false;
    seen.add(key);
    return true;
  });
  const outcome = await ensureResults(own, { resultsFile: P.resultsFile, workers: P.workers, runMissing: P.runMissing, log });
  const byHash = new Map<string, ResultRow>(fromReference);
  for (const row of outcome.rows.filter(current)) byHash.set(specHash(row.spec), row);
  const rowsOf = (list: readonly ExperimentSpec[]) => list.flatMap((s) => byHash.get(specHash(s)) ?? []);
  const missingOf = (list: readonly ExperimentSpec[]) => list.filter((s) => !byHash.has(specHash(s)));
  const missing = { fewSample: missingOf(specs.fewSample), components: missingOf(specs.components), reference: missingOf(specs.reference) };
  // Quick mode's grid is no preset: it is recorded by running the notebook (runMissing) again.
  const rerun = `re-run this notebook with runMissing: true (the quick grid, into ${P.resultsFile})`;
  const commands = P.quick ? { fewSample: rerun, components: rerun, reference: rerun } : recordCommands(P);
  const messages = [
    `${byHash.size} of ${seen.size + fromReference.size} run(s) recorded (${P.resultsFile}${P.referenceFiles.length ? `, clean and whole-layer runs also from ${P.referenceFiles.join(', ')}` : ''})`,
  ];
  const say = (what: string, list: readonly ExperimentSpec[], total: number, command: string) => {
    if (list.length) messages.push(`${what}: ${list.length} of ${total} run(s) not recorded yet: run ${command}`);
  };
  say('(a) few-sample re-initialisation', missing.fewSample, specs.fewSample.length, commands.fewSample);
  say('(b) components', missing.components, specs.components.length, commands.components);
  // The components' clean runs at the few-sample preset's size are its own clean runs too.
  const referenceOnly = missing.reference.filter((s) => !specs.fewSample.some((f) => specHash(f) === specHash(s)));
  say('(b) clean and whole-layer references', referenceOnly, specs.reference.length, commands.reference);
  if (outcome.stale) messages.push(`${outcome.stale} row(s) made with other weights than "${P.model}" has now are left out`);
  return {
    fewSampleRows: rowsOf(specs.fewSample),
    componentRows: rowsOf([...specs.components, ...specs.reference]),
    missing,
    messages,
    outcome,
  };
}

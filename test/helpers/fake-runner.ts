/**
 * A stand-in for src/experiment/run.ts: same export (runExperiment), a schema-valid ResultRow after
 * a short sleep, accuracy derived from the spec so reruns agree. Failure injection for grid tests
 * through FAKE_RUNNER_FAIL = JSON of one or a list of { seed, kind: 'crash' | 'crash-once' | 'throw' |
 * 'user-error', markerDir? } (crash-once leaves a marker file in markerDir to crash only once).
 * Its rows carry the identity the spec runs under in the worker, computed by the real code
 * (src/experiment/identity.ts: the model directory's fingerprint, the resolved recipe, this
 * process's engine numerics, or FAKE_RUNNER_NUMERICS to stand in for another engine), and record the
 * HEALING_THREADS the worker was given. FAKE_RUNNER_GATE = a path makes every run wait, after its
 * sleep, until that file exists (tests that need runs in flight at once, whatever the machine's load).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../src/errors';
import { specHash } from '../../src/experiment/hash';
import { createIdentityResolver, identityHash, type IdentityResolver } from '../../src/experiment/identity';
import { provenance } from '../../src/experiment/provenance';
import { ExperimentSpecSchema, specLabel, type ExperimentSpec, type ExperimentSpecInput, type ResultRow } from '../../src/experiment/spec';
import type { RunProgress } from '../../src/experiment/worker';

/** Deterministic in the spec: a clean run scores higher than a corrupted one. */
export function fakeAccuracy(spec: ExperimentSpec): number {
  const jitter = parseInt(specHash(spec).slice(0, 4), 16) / 0xffff;
  return spec.corruption ? 0.6 + 0.2 * jitter : 0.85 + 0.1 * jitter;
}

/** A complete, schema-valid row for `spec` with the given final accuracy. */
export function fakeRow(input: ExperimentSpecInput, accuracy?: number, extra: Partial<ResultRow> = {}): ResultRow {
  const spec = ExperimentSpecSchema.parse(input);
  const acc = accuracy ?? fakeAccuracy(spec);
  const now = new Date().toISOString();
  const wrong = Number.isFinite(acc) ? Math.round((1 - acc) * 50) : 50;
  const evalMetrics = { accuracy: acc, macroF1: acc, perClassF1: [acc, acc], confusion: [[50 - wrong, wrong], [wrong, 50 - wrong]] };
  return {
    hash: specHash(spec),
    spec,
    status: 'ok',
    label: specLabel(spec),
    numLabels: 2,
    labelNames: ['negative', 'positive'],
    recipe: { ...spec.recipe, learningRate: spec.recipe.learningRate ?? 5e-5 },
    epochs: Array.from({ length: spec.recipe.epochs }, (_, epoch) => ({ epoch, trainLoss: 0.7 / (epoch + 1), eval: evalMetrics })),
    lossCurve: [{ step: 0, loss: 0.7 }, { step: 1, loss: 0.5 }],
    final: { accuracy: acc, macroF1: acc },
    trainExamples: spec.dataset.trainSize ?? 100,
    evalExamples: spec.dataset.evalSize ?? 100,
    timings: { startedAt: now, finishedAt: now, seconds: 0, trainTokensPerSecond: 1000 },
    provenance: { backend: 'cpu', packageVersion: '0.0.0', gitCommit: 'unknown', node: process.version, host: 'test' },
    ...extra,
  };
}

/**
 * The row a run of `input` records: fakeRow with the identity the spec runs under now (the model's
 * fingerprint, the resolved recipe, the engine's numerics), hashed as the real runner hashes it.
 */
export async function fakeRunRow(input: ExperimentSpecInput, resolve: IdentityResolver = createIdentityResolver(), accuracy?: number): Promise<ResultRow> {
  const identity = await resolve(input);
  return {
    ...fakeRow(identity.spec, accuracy),
    hash: identityHash(identity),
    recipe: { ...identity.recipe },
    modelFingerprint: identity.modelFingerprint,
    numerics: identity.numerics,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runExperiment(spec: ExperimentSpec, options: { onProgress?: (p: RunProgress) => void } = {}): Promise<ResultRow> {
  const faults = [JSON.parse(process.env.FAKE_RUNNER_FAIL ?? '[]')].flat();
  const fail = faults.find((f: { seed: number }) => f.seed === spec.seed);
  if (fail) {
    if (fail.kind === 'user-error') throw new UserError(`fake: dataset ${spec.dataset.name} not found`);
    if (fail.kind === 'throw') throw new Error('fake: engine exploded');
    if (fail.kind === 'crash') process.exit(3);
    if (fail.kind === 'crash-once') {
      mkdirSync(fail.markerDir, { recursive: true });
      const marker = join(fail.markerDir, specHash(spec));
      if (!existsSync(marker)) {
        writeFileSync(marker, String(process.pid));
        process.exit(3);
      }
    }
  }
  const started = new Date();
  const total = 4;
  const ms = Number(process.env.FAKE_RUNNER_SLEEP_MS ?? 300);
  for (let step = 1; step <= total; step++) {
    await sleep(ms / total);
    options.onProgress?.({ phase: 'train', step, totalSteps: total, loss: 1 / step });
  }
  const gate = process.env.FAKE_RUNNER_GATE;
  while (gate && !existsSync(gate)) await sleep(50);
  const numerics = process.env.FAKE_RUNNER_NUMERICS;
  const row = await fakeRunRow(spec, createIdentityResolver(numerics ? { numerics } : {}));
  return {
    ...row,
    timings: { ...row.timings, startedAt: started.toISOString(), finishedAt: new Date().toISOString(), seconds: (Date.now() - started.getTime()) / 1000 },
    provenance: await provenance({ backend: 'fake' }),
    workerPid: process.pid,
    workerThreads: process.env.HEALING_THREADS ?? null,
  };
}

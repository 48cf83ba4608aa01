import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { damageFindings, fillMaskComparison, loadMlmModel, mlmDamage, representationSimilarity, type MlmDamageRow, type MlmModel } from '../src/analysis/damage';
import { hiddenStatesFor, hiddenStateArrays } from '../src/analysis/hidden';
import { encode } from '../src/model/encoder';
import { fillMask } from '../src/model/fill-mask';
import { disposeParams } from '../src/model/names';
import { UserError } from '../src/errors';
import { makeTinyModel, sentimentExamples } from './helpers/tiny-model';

const work = mkdtempSync(join(tmpdir(), 'healing-damage-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const tiny = await makeTinyModel(join(work, 'tiny'), { numLayers: 2, hiddenSize: 32 });
const model: MlmModel = await loadMlmModel(tiny.dir);
const texts = sentimentExamples(60, 3).map((e) => e.text);
// A corruption that touches the chosen layers' tensors and changes none (a ratio of 0 is refused): noise of
// 1e-50 x std is below half of float32's smallest step, so every entry rounds back to itself.
const noOp = (layers: string) => `${layers}/all/noise:0.${'0'.repeat(49)}1`;

test('hiddenStatesFor: masked mean pooling and [CLS] equal each text encoded alone (no padding), in text order', () => {
  const some = ['the movie was good .', 'bad', 'a very very dull film and the plot is weak , but the music is nice'];
  const before = tf.memory().numTensors;
  const pooled = hiddenStatesFor(model.config, model.params, model.tokenizer, some, { pooling: 'mean', batchSize: 3 });
  const cls = hiddenStateArrays(model.config, model.params, model.tokenizer, some, { pooling: 'cls', batchSize: 3 });
  assert.equal(pooled.length, model.config.numLayers + 1);
  const got = pooled.map((p) => p.arraySync());
  tf.dispose(pooled);
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  some.forEach((text, i) => {
    const alone = tf.tidy(() => {
      const ids = tf.tensor2d([model.tokenizer.encode(text).inputIds], undefined, 'int32');
      const { hiddenStates } = encode(model.config, model.params, { inputIds: ids, attentionMask: tf.onesLike(ids) as tf.Tensor2D });
      return hiddenStates.map((h) => [h.mean(1).squeeze([0]).arraySync() as number[], h.slice([0, 0, 0], [1, 1, -1]).reshape([-1]).arraySync() as number[]]);
    });
    alone.forEach(([mean, first], depth) => {
      mean.forEach((v, j) => assert.ok(Math.abs(v - got[depth][i][j]) < 1e-4, `mean, text ${i}, depth ${depth}, unit ${j}: ${v} vs ${got[depth][i][j]}`));
      first.forEach((v, j) => assert.ok(Math.abs(v - cls[depth][i][j]) < 1e-4, `cls, text ${i}, depth ${depth}, unit ${j}`));
    });
  });
});

test('mlmDamage: clean first, one row per spec and seed; a corruption that changes no weight scores exactly as the clean model', async () => {
  const before = tf.memory().numTensors;
  const rows = await mlmDamage({
    model,
    specs: ['bottom:1', 'top:1', noOp('bottom:2'), 'bottom:2'],
    texts,
    seeds: [0, 1],
    maxLength: 16,
  });
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  assert.equal(rows.length, 2 * 5);
  assert.deepEqual(rows.slice(0, 5).map((r) => [r.corruption, r.side, r.k, r.layers, r.seed]), [
    ['clean', 'clean', 0, '', 0],
    ['bottom:1', 'bottom', 1, '0', 0],
    ['top:1', 'top', 1, '1', 0],
    [noOp('bottom:2'), 'bottom', 2, '0,1', 0],
    ['bottom:2', 'bottom', 2, '0,1', 0],
  ]);
  const clean = rows[0];
  assert.ok(clean.sequences > 1 && Number.isFinite(clean.mlmLoss));
  assert.ok(clean.mlmAccuracy >= 0 && clean.mlmAccuracy <= 1);
  assert.equal(rows[3].mlmLoss, clean.mlmLoss, 'noise below float32 resolution changes no weight');
  assert.equal(rows[3].mlmAccuracy, clean.mlmAccuracy);
  assert.notEqual(rows[4].mlmLoss, clean.mlmLoss, 're-initialising both layers changes the predictions');
  // The masked positions do not depend on the corruption seed, so the clean rows of both seeds agree;
  // the re-initialised weights do depend on it.
  assert.equal(rows[5].mlmLoss, clean.mlmLoss);
  assert.notEqual(rows[9].mlmLoss, rows[4].mlmLoss);
});

test('mlmDamage: the same call gives the same numbers; another mask seed scores other positions', async () => {
  const a = await mlmDamage({ model, specs: ['top:1'], texts, maxLength: 16 });
  const b = await mlmDamage({ model, specs: ['top:1'], texts, maxLength: 16 });
  const c = await mlmDamage({ model, specs: ['top:1'], texts, maxLength: 16, maskSeed: 5 });
  assert.deepEqual(a, b);
  assert.notEqual(a[0].mlmLoss, c[0].mlmLoss);
});

test('mlmDamage: too little text and a model without an MLM head are clear errors', async () => {
  await assert.rejects(mlmDamage({ model, specs: [], texts: ['good'], maxLength: 16 }), (e: unknown) => e instanceof UserError && /do not fill one sequence/.test(e.message));
  const classifier = await makeTinyModel(join(work, 'classifier'), { head: 'classifier' });
  await assert.rejects(loadMlmModel(classifier.dir), (e: unknown) => e instanceof UserError && /has no masked-LM head/.test(e.message));
  await assert.rejects(mlmDamage({ model, specs: ['bottom:3'], texts, maxLength: 16 }), /3/);
});

test('fillMaskComparison: per sentence, the clean predictions of fill-mask, then each corruption', async () => {
  const sentences = ['the movie was [MASK] .', 'a [MASK] film'];
  const rows = await fillMaskComparison(model, sentences, ['bottom:2', noOp('top:1')], { top: 4 });
  assert.deepEqual(rows.map((r) => [r.sentence, r.corruption]), [
    [sentences[0], 'clean'], [sentences[0], 'bottom:2'], [sentences[0], noOp('top:1')],
    [sentences[1], 'clean'], [sentences[1], 'bottom:2'], [sentences[1], noOp('top:1')],
  ]);
  const direct = fillMask(model.config, model.params, model.tokenizer, sentences[1], 4)[0].predictions;
  assert.deepEqual(rows[3].tokens, direct.map((p) => p.token));
  assert.deepEqual(rows[5].tokens, rows[3].tokens, 'noise below float32 resolution predicts as the clean model');
  for (const r of rows) {
    assert.equal(r.tokens.length, 4);
    assert.ok(r.probabilities.every((p, i) => i === 0 || p <= r.probabilities[i - 1]), 'best first');
    assert.ok(r.probabilities.reduce((a, b) => a + b, 0) <= 1 + 1e-5);
  }
  assert.notDeepEqual(rows[1].probabilities, rows[0].probabilities);
});

test('representationSimilarity: CKA 1 below the corrupted layer, less than 1 from it upwards', async () => {
  const before = tf.memory().numTensors;
  const rows = await representationSimilarity(model, ['top:1', 'bottom:1', noOp('bottom:2')], texts, { maxLength: 16 });
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  const cka = (spec: string, layer: number) => rows.find((r) => r.corruption === spec && r.layer === layer)!.cka;
  assert.equal(rows.length, 3 * 3);
  for (const spec of ['top:1', 'bottom:1']) assert.ok(Math.abs(cka(spec, -1) - 1) < 1e-4, 'embeddings are never corrupted');
  assert.ok(Math.abs(cka('top:1', 0) - 1) < 1e-4, 'layer 0 is untouched by top:1 and sees the same input');
  assert.ok(cka('top:1', 1) < 0.99, `corrupted top layer: ${cka('top:1', 1)}`);
  assert.ok(cka('bottom:1', 0) < 0.99, `corrupted bottom layer: ${cka('bottom:1', 0)}`);
  for (const layer of [-1, 0, 1]) assert.ok(Math.abs(cka(noOp('bottom:2'), layer) - 1) < 1e-4);
  assert.deepEqual(rows.filter((r) => r.corruption === 'top:1').map((r) => r.layerName), ['embeddings', 'layer 0', 'layer 1']);
});

test('loadMlmModel by path leaves nothing behind once disposed', async () => {
  const before = tf.memory().numTensors;
  const m = await loadMlmModel(tiny.dir);
  assert.equal(m.config.numLayers, 2);
  disposeParams(m.params);
  assert.equal(tf.memory().numTensors, before);
});

/** Rows of a 3-layer model: accuracy per (side, k), the same for every seed given. */
function plantedRows(clean: number, bottom: number[], top: number[], seeds = [0, 1]): MlmDamageRow[] {
  const layersOf = (side: string, k: number) => (side === 'bottom' ? [0, 1, 2].slice(0, k) : [0, 1, 2].slice(3 - k)).join(',');
  return seeds.flatMap((seed) => [
    { corruption: 'clean', side: 'clean' as const, k: 0, layers: '', seed, mlmLoss: 1, mlmAccuracy: clean, sequences: 8 },
    ...(['bottom', 'top'] as const).flatMap((side) =>
      (side === 'bottom' ? bottom : top).map((acc, i) => ({
        corruption: `${side}:${i + 1}`, side, k: i + 1, layers: layersOf(side, i + 1), seed, mlmLoss: 2, mlmAccuracy: acc + 0.001 * seed,
      sequences: 8 })),
    ),
  ]);
}

test('damageFindings: monotone damage with bottom worse is supported; K = L (same layers) is not compared', () => {
  const f = damageFindings(plantedRows(0.4, [0.2, 0.1, 0.05], [0.3, 0.15, 0.05]));
  assert.equal(f.moreIsWorse, 'supported');
  assert.equal(f.bottomIsWorse, 'supported');
  assert.deepEqual(f.comparedKs, [1, 2]);
  assert.deepEqual(f.bottomWorseKs, [1, 2]);
  assert.ok(Math.abs(f.curves.bottom[0].accuracy - 0.2005) < 1e-12, 'mean over seeds');
  assert.ok(Math.abs(f.range - (0.4 - 0.0505)) < 1e-12);
  assert.equal(f.text.length, 2);
});

test('damageFindings: a rise with K or top worse is not supported; an untrained model is not enough data', () => {
  const rising = damageFindings(plantedRows(0.4, [0.2, 0.3, 0.05], [0.1, 0.15, 0.05]));
  assert.equal(rising.moreIsWorse, 'not supported');
  assert.deepEqual(rising.increases.bottom, [2]);
  assert.equal(rising.bottomIsWorse, 'not supported');
  assert.deepEqual(rising.bottomWorseKs, [], 'top-K scores lower at both K');
  const tied = damageFindings(plantedRows(0.4, [0.2, 0.1, 0.05], [0.3, 0.1, 0.05], [0]));
  assert.deepEqual([tied.bottomWorseKs, tied.tiedKs, tied.bottomIsWorse], [[1], [2], 'not supported']);
  assert.match(tied.text[1], /1 of 2 K \(1, 2\); equal at K = 2\./);
  const flat = damageFindings(plantedRows(0.05, [0.049, 0.05, 0.048], [0.05, 0.049, 0.048]));
  assert.equal(flat.moreIsWorse, 'not enough data');
  assert.equal(flat.bottomIsWorse, 'not enough data');
  assert.match(flat.text[0], /no measurable knowledge/);
  assert.equal(damageFindings([]).moreIsWorse, 'not enough data');
});

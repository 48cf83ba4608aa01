import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/backend/engine';
import { loadCheckpoint, type Checkpoint } from '../src/io/checkpoint';
import { forward, mlmLogits } from '../src/model/heads';
import { initParams } from '../src/model/init';
import { disposeParams, type ParamMap } from '../src/model/names';
import { gelu, layerNorm } from '../src/model/layers';
import { fillMask } from '../src/model/fill-mask';
import { UserError } from '../src/errors';
import { makeTinyModel, tinyConfig } from './helpers/tiny-model';

// wasm is what production runs; the cpu backend is switched to per test (both are registered).
await initEngine({ backend: 'wasm' });

const parityDir = process.env.HEALING_SHARED_DIR
  ? join(process.env.HEALING_SHARED_DIR, 'fixtures/parity')
  : fileURLToPath(new URL('../../shared/fixtures/parity/', import.meta.url));

interface ParityInput {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids?: number[][];
}

interface Expected {
  hidden_states: number[][][][];
  last_hidden_state: number[][][];
  pooler_output?: number[][];
  logits: number[][];
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

function inputsOf(input: ParityInput) {
  return {
    inputIds: tf.tensor2d(input.input_ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(input.attention_mask, undefined, 'int32'),
    tokenTypeIds: input.token_type_ids ? tf.tensor2d(input.token_type_ids, undefined, 'int32') : undefined,
  };
}

/** Largest |a - b| over [batch, seq, hidden] at positions the mask keeps. */
function maskedMaxDiff(actual: number[][][], expected: number[][][], mask: number[][]): number {
  let worst = 0;
  expected.forEach((row, b) =>
    row.forEach((vec, t) => {
      if (mask[b][t] !== 1) return;
      vec.forEach((x, h) => {
        worst = Math.max(worst, Math.abs(actual[b][t][h] - x));
      });
    }),
  );
  return worst;
}

function maxDiff2d(actual: number[][], expected: number[][]): number {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  expected.forEach((row, i) => {
    assert.equal(actual[i].length, row.length);
    row.forEach((x, j) => {
      worst = Math.max(worst, Math.abs(actual[i][j] - x));
    });
  });
  return worst;
}

for (const backend of ['cpu', 'wasm'] as const) {
  for (const fixture of ['bert-tiny-random', 'distilbert-tiny-random']) {
    test(`${fixture} reproduces the reference outputs on ${backend}`, async () => {
      await tf.setBackend(backend);
      assert.equal(tf.getBackend(), backend);
      const dir = join(parityDir, fixture);
      const input = readJson<ParityInput>(join(dir, 'input.json'));
      const expected = readJson<Expected>(join(dir, 'expected.json'));
      const checkpoint = await loadCheckpoint(dir);
      try {
        assert.equal(checkpoint.head, 'classifier');
        const out = tf.tidy(() => {
          const r = forward(checkpoint.config, checkpoint.params, checkpoint.head, inputsOf(input));
          return {
            hidden: r.hiddenStates.map((h) => h.arraySync()),
            last: r.lastHiddenState.arraySync(),
            pooler: r.poolerOutput?.arraySync(),
            logits: r.logits!.arraySync(),
          };
        });
        assert.equal(out.hidden.length, expected.hidden_states.length, 'one hidden state per layer plus the embeddings');
        out.hidden.forEach((h, layer) => {
          const d = maskedMaxDiff(h, expected.hidden_states[layer], input.attention_mask);
          assert.ok(d < 1e-4, `hidden_states[${layer}] differs by ${d}`);
        });
        const dLast = maskedMaxDiff(out.last, expected.last_hidden_state, input.attention_mask);
        assert.ok(dLast < 1e-4, `last_hidden_state differs by ${dLast}`);
        if (expected.pooler_output) {
          assert.ok(out.pooler, 'BERT returns a pooler output');
          const d = maxDiff2d(out.pooler, expected.pooler_output);
          assert.ok(d < 1e-4, `pooler_output differs by ${d}`);
        } else {
          assert.equal(out.pooler, undefined, 'DistilBERT has no pooler');
        }
        const dLogits = maxDiff2d(out.logits, expected.logits);
        assert.ok(dLogits < 1e-4, `logits differ by ${dLogits}`);
      } finally {
        disposeParams(checkpoint.params);
      }
    });
  }
}

/** The BERT fixture with every dropout at 0.5, so training mode visibly differs from eval mode. */
async function bertWithDropout(): Promise<Checkpoint> {
  const checkpoint = await loadCheckpoint(join(parityDir, 'bert-tiny-random'));
  checkpoint.config = { ...checkpoint.config, hiddenDropout: 0.5, attentionDropout: 0.5, classifierDropout: 0.5 };
  return checkpoint;
}

test('dropout: the same seed gives the same outputs, another seed others, eval mode ignores it', async () => {
  await tf.setBackend('cpu');
  const checkpoint = await bertWithDropout();
  const input = readJson<ParityInput>(join(parityDir, 'bert-tiny-random', 'input.json'));
  const run = (options: { training?: boolean; dropoutSeed?: number }) =>
    tf.tidy(() => {
      const r = forward(checkpoint.config, checkpoint.params, 'classifier', inputsOf(input), options);
      return { last: Array.from(r.lastHiddenState.dataSync()), logits: Array.from(r.logits!.dataSync()) };
    });
  try {
    const a = run({ training: true, dropoutSeed: 11 });
    const b = run({ training: true, dropoutSeed: 11 });
    const c = run({ training: true, dropoutSeed: 12 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.last, c.last);
    assert.notDeepEqual(a.logits, c.logits);

    const plain = run({});
    assert.deepEqual(run({ training: false, dropoutSeed: 11 }), plain);
    assert.deepEqual(run({ training: false, dropoutSeed: 12 }), plain);
    assert.notDeepEqual(a.last, plain.last, 'training mode applies dropout');
  } finally {
    disposeParams(checkpoint.params);
  }
});

test('padded positions do not influence real positions (the attention mask works)', async () => {
  await tf.setBackend('cpu');
  const dir = join(parityDir, 'bert-tiny-random');
  const checkpoint = await loadCheckpoint(dir);
  const input = readJson<ParityInput>(join(dir, 'input.json'));
  const changed: ParityInput = structuredClone(input);
  let padded = 0;
  changed.input_ids.forEach((row, b) =>
    row.forEach((id, t) => {
      if (input.attention_mask[b][t] === 0) {
        row[t] = 7 + ((id + t) % 50);
        changed.token_type_ids![b][t] = 1;
        padded++;
      }
    }),
  );
  assert.ok(padded > 0, 'the fixture has padding');
  const run = (x: ParityInput) =>
    tf.tidy(() => {
      const r = forward(checkpoint.config, checkpoint.params, 'classifier', inputsOf(x));
      return { last: r.lastHiddenState.arraySync(), logits: r.logits!.arraySync() };
    });
  try {
    const before = run(input);
    const after = run(changed);
    assert.ok(maskedMaxDiff(before.last, after.last, input.attention_mask) < 1e-6);
    assert.ok(maxDiff2d(before.logits, after.logits) < 1e-6);
    // The new ids did flow into the model: the padded positions' own states changed.
    const inverse = input.attention_mask.map((row) => row.map((m) => 1 - m));
    assert.ok(maskedMaxDiff(before.last, after.last, inverse) > 1e-3);
  } finally {
    disposeParams(checkpoint.params);
  }
});

test('masked-LM head: [n, vocab] logits, decoder tied to the word embeddings', async () => {
  await tf.setBackend('cpu');
  const config = tinyConfig({ dropout: 0 });
  const params = initParams(config, 'mlm', 2, 3);
  // A non-zero bias so the tied part and the bias can be told apart.
  params.get('cls.predictions.bias')!.dispose();
  params.set('cls.predictions.bias', tf.randomNormal([config.vocabSize], 0, 1, 'float32', 5));
  const wordsName = 'bert.embeddings.word_embeddings.weight';
  try {
    tf.tidy(() => {
      const hidden = tf.randomNormal([5, config.hiddenSize], 0, 1, 'float32', 9) as tf.Tensor2D;
      const logits = mlmLogits(config, params, hidden);
      assert.deepEqual(logits.shape, [5, config.vocabSize]);

      // Independently: transform = LayerNorm(gelu(dense(h))), logits = transform . E^T + bias.
      const t = layerNorm(params, 'cls.predictions.transform.LayerNorm', gelu(
        hidden.matMul(params.get('cls.predictions.transform.dense.weight')!, false, true).add(params.get('cls.predictions.transform.dense.bias')!),
      ), config.layerNormEps);
      const reference = t.matMul(params.get(wordsName)!, false, true).add(params.get('cls.predictions.bias')!);
      assert.ok(logits.sub(reference).abs().max().dataSync()[0] < 1e-5);

      // Scaling the word embeddings scales the tied part of the logits by the same factor.
      const scaled: ParamMap = new Map(params);
      scaled.set(wordsName, params.get(wordsName)!.mul(2));
      const bias = params.get('cls.predictions.bias')!;
      const doubled = mlmLogits(config, scaled, hidden).sub(bias);
      const diff = doubled.sub(logits.sub(bias).mul(2)).abs().max().dataSync()[0];
      assert.ok(diff < 1e-4, `tied decoder: ${diff}`);

      // A zeroed embedding row leaves only the bias in that token's column.
      const k = 9;
      const zeroRow = tf.oneHot(tf.tensor1d([k], 'int32'), config.vocabSize).reshape([config.vocabSize, 1]);
      const zeroed: ParamMap = new Map(params);
      zeroed.set(wordsName, params.get(wordsName)!.mul(tf.scalar(1).sub(zeroRow)));
      const column = mlmLogits(config, zeroed, hidden).slice([0, k], [-1, 1]).dataSync();
      const b = bias.dataSync()[k];
      for (const v of column) assert.ok(Math.abs(v - b) < 1e-6);
    });
  } finally {
    disposeParams(params);
  }
});

test('no tensor leaks: three forward passes in tidy leave the tensor count flat', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    await tf.setBackend(backend);
    const checkpoint = await bertWithDropout();
    const input = readJson<ParityInput>(join(parityDir, 'bert-tiny-random', 'input.json'));
    try {
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        const logits = tf.tidy(() => forward(checkpoint.config, checkpoint.params, 'classifier', inputsOf(input), { training: i > 0, dropoutSeed: i }).logits!);
        logits.dispose();
        assert.equal(tf.memory().numTensors, before, `${backend}, pass ${i + 1}`);
      }
    } finally {
      disposeParams(checkpoint.params);
    }
  }
});

test('fillMask: a distribution per [MASK], all of the vocabulary at most, a clear error without a mask', async () => {
  await tf.setBackend('wasm');
  const dir = await mkdtemp(join(tmpdir(), 'healing-model-'));
  try {
    const tiny = await makeTinyModel(join(dir, 'tiny'));
    const checkpoint = await loadCheckpoint(tiny.dir, { head: 'mlm' });
    try {
      const text = 'the [MASK] was [MASK] .';
      const masks = fillMask(checkpoint.config, checkpoint.params, tiny.tokenizer, text, 1000);
      const ids = tiny.tokenizer.encode(text).inputIds;
      assert.deepEqual(masks.map((m) => m.position), ids.flatMap((id, i) => (id === tiny.tokenizer.maskId ? [i] : [])));
      for (const m of masks) {
        assert.equal(m.predictions.length, checkpoint.config.vocabSize, 'a --top beyond the vocabulary gives all of it');
        const total = m.predictions.reduce((s, p) => s + p.probability, 0);
        assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
        m.predictions.forEach((p, k) => k > 0 && assert.ok(p.probability <= m.predictions[k - 1].probability));
        assert.equal(new Set(m.predictions.map((p) => p.id)).size, checkpoint.config.vocabSize);
      }
      assert.throws(() => fillMask(checkpoint.config, checkpoint.params, tiny.tokenizer, 'the movie was good'), UserError);
    } finally {
      disposeParams(checkpoint.params);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

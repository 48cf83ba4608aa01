import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../io/checkpoint';
import { disposeParams } from '../model/names';
import { UserError } from '../errors';
import { pretrainPaths, readCurve, recoverSnapshot, type PretrainState } from './pretrain';

/**
 * Turns a finished pretraining run into a shippable model directory: fp16 weights (to keep the
 * repository small), the tokenizer, the held-out curve as data, and a model card saying how it was
 * made and how to rebuild it.
 */
export async function exportPretrainedModel(runDir: string, outDir: string): Promise<string> {
  const p = pretrainPaths(runDir);
  await recoverSnapshot(runDir);
  const state = JSON.parse(await readFile(p.state, 'utf8')) as PretrainState;
  if (!state.finished) throw new UserError(`${runDir}: pretraining is at step ${state.step} of ${state.totalSteps}; finish it (--resume) before exporting`);
  const checkpoint = await loadCheckpoint(p.checkpoint, { head: 'mlm' });
  try {
    await saveCheckpoint(outDir, { config: checkpoint.config, params: checkpoint.params, head: 'mlm', tokenizerFiles: p.tokenizer }, { dtype: 'F16' });
  } finally {
    disposeParams(checkpoint.params);
  }
  const curve = await readCurve(runDir);
  await writeFile(join(outDir, 'pretraining.json'), JSON.stringify({ state, curve }, null, 2) + '\n');
  await writeFile(join(outDir, 'README.md'), modelCard(state, curve, checkpoint.config, state.command ?? 'pretrain ...'));
  return outDir;
}

function pct(x: number | undefined): string {
  return x === undefined ? '-' : `${(x * 100).toFixed(1)} %`;
}

export function modelCard(
  state: PretrainState,
  curve: Awaited<ReturnType<typeof readCurve>>,
  config: { hiddenSize: number; numLayers: number; numHeads: number; intermediateSize: number; vocabSize: number },
  command: string,
): string {
  const a = state.args;
  const last = curve[curve.length - 1];
  const params =
    config.vocabSize * config.hiddenSize +
    config.numLayers * (4 * config.hiddenSize * config.hiddenSize + 2 * config.hiddenSize * config.intermediateSize);
  const rows = curve.map((c) => `| ${c.step} | ${c.tokensSeen} | ${c.trainLoss.toFixed(3)} | ${c.heldOutLoss?.toFixed(3) ?? '-'} | ${pct(c.heldOutAccuracy)} |`);
  return `# healing-bert pretrained model (${config.numLayers} layers, hidden ${config.hiddenSize})

A small BERT pretrained by healing-bert with masked-language modelling only (${Math.round(a.maskProbability * 100)} % of tokens; of those
80 % [MASK], 10 % random, 10 % unchanged; no next-sentence task), so that the study has pretrained
layers to corrupt without any download. It is far weaker than bert-base-uncased: see the README's limits.

| | |
|---|---|
| architecture | BERT, ${config.numLayers} layers, hidden ${config.hiddenSize}, ${config.numHeads} heads, FFN ${config.intermediateSize}, ~${(params / 1e6).toFixed(1)}M weights |
| vocabulary | WordPiece, ${config.vocabSize} tokens, uncased, trained on the corpus below |
| corpus | ${state.corpusStats.map((s) => `${s.source}: ${s.documents} documents, ${s.words} words`).join('; ')} |
| domain text | ${a.corpus.includes('datasets') ? 'yes: the unlabelled training texts of the six datasets are in the corpus (never their evaluation splits)' : 'no: only general English text'} |
| sequences | packed to ${a.maxLength} tokens; ${state.trainSequences} training, ${state.heldOutSequences} held out (by document) |
| tokens seen | ${state.tokensSeen} (${state.step} steps of ${a.batchSize} x ${a.maxLength}) |
| optimiser | AdamW, peak lr ${a.learningRate}, warmup ${a.warmupRatio * 100} %, linear decay, weight decay ${a.weightDecay}, gradient clipping at ${a.maxGradNorm} |
| position embeddings | learned, started from ${a.positionInit === 'sinusoidal' ? 'a sine/cosine table (see `--position-init`)' : 'N(0, 0.02) as Hugging Face'} |
| dropout while pretraining | ${a.pretrainDropout ?? 0.1} (the saved config keeps 0.1 for fine-tuning) |
| wall time | ${(state.seconds / 3600).toFixed(2)} h of training steps on ${state.backend} |
| held-out MLM | loss ${last?.heldOutLoss?.toFixed(3) ?? '-'}, accuracy ${pct(last?.heldOutAccuracy)} |
| unigram baseline | always predicting "${state.unigramBaseline.token}": accuracy ${pct(state.unigramBaseline.accuracy)} |
| weights | fp16 safetensors (trained in fp32) |

## Rebuild

\`\`\`
npx healing ${command}
\`\`\`

The run is deterministic for a given seed and backend; \`--resume\` continues an interrupted run exactly.

## Held-out curve

The same data is in \`pretraining.json\`.

| step | tokens | train loss | held-out loss | held-out accuracy |
|---|---|---|---|---|
${rows.join('\n')}
`;
}

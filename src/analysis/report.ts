import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative } from 'node:path';
import { datasetEntry, isRegistered } from '../data/registry';
import { readResults, storeWarning } from '../experiment/store';
import { datasetLabel, type ResultRow } from '../experiment/spec';
import { SHIPPED_MODELS, shippedModelDir, type ShippedModel } from '../io/models';
import { escapeHtml, figureHtml, tableHtml } from './display';
import { accuracyVsK, bottomVsTopFigure, recoveryBars, type Figure } from './figures';
import { allFindings, cleanBaselines, selectRows, staleRows, type BaselineDetail, type EpochGapResult, type Finding, type Note, type Verdict } from './findings';
import { resultsFrame } from './frames';
import { currentFingerprint, provenanceStamp, stampText, type ProvenanceStamp } from './study';
import { RECIPE_SUMMARY } from '../train/recipe';
import { skippedLinesWarning } from '../io/jsonl';
import { defaultBagOfWordsFile, loadTruncatingTokenizer, readBagOfWordsRows } from './bag-of-words';

/**
 * The report a user hands to a colleague: the setup (models, datasets, recipe, where we differ from
 * the paper), each finding with its figure, table and computed verdict, and the provenance stamp.
 * One content object, two renderings: self-contained HTML (plotly.js inlined once, figures
 * interactive, no network needed) and Markdown with PNG figures for writing up.
 */

export type Table = Array<Record<string, string | number>>;

export interface ReportFigure {
  /** Stable id: the HTML div id and the PNG file name. */
  id: string;
  figure: Figure;
}

export interface ReportSection {
  id: 'f1' | 'f2' | 'f3';
  finding: Finding<unknown>;
  figures: ReportFigure[];
}

export interface ReportContent {
  title: string;
  resultsFile: string;
  /** Rows in the results file (before selection). */
  rowCount: number;
  /** Rows the findings analyse (one model, its current weights, one setting per dataset). */
  analysedCount: number;
  model: string | undefined;
  setup: { models: Table; datasets: Table; recipe: Table; choices: Table; baselines: Finding<unknown>; figures: ReportFigure[] };
  sections: ReportSection[];
  stamp: ProvenanceStamp;
  /** Stale rows, rows left out, store warnings. */
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Content

/** Where we depart from the paper (or fill in what it leaves unsaid), in one place. */
export const CHOICES_VS_PAPER: Table = [
  {
    aspect: 'Pretrained model',
    paper: 'a pretrained BERT (base size)',
    ours: 'small BERTs pretrained by this project on public-domain text (no download needed; see the model cards); any Hugging Face BERT runs with --model',
  },
  {
    aspect: 'Datasets',
    paper: 'SST-2, IMDB, AG News, Emotion, DBpedia-14, Twitter financial news topics',
    ours: 'the same six; stratified subsets of 2,000 training and 1,000 evaluation examples per dataset (paper preset), so the grid runs on a CPU',
  },
  {
    aspect: 'Corruption',
    paper: 're-initialise the chosen encoder layers',
    ours: 'LayerNorm weights 1, biases 0, other weights Kaiming-uniform (public descriptions of the paper\'s method); bottom:K and top:K for K = 1..L',
  },
  {
    aspect: 'Fine-tuning recipe',
    paper: 'unpublished',
    ours: `${RECIPE_SUMMARY}, max length 128`,
  },
  {
    aspect: 'Statistics',
    paper: 'single numbers per setting',
    ours: '3 or 5 seeds per setting (5 where a run costs under 2 minutes); 95 % t intervals over seeds; bottom vs top paired by dataset, K and seed (paired t-test, Cohen\'s dz)',
  },
];

/** Key rows of a model card's first table ("| architecture | BERT, 6 layers ... |"). */
export function modelCardFacts(markdown: string): Record<string, string> {
  const facts: Record<string, string> = {};
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$/.exec(line.trim());
    if (!m || /^-+$/.test(m[1]) || m[1] === 'step') continue;
    if (!(m[1] in facts)) facts[m[1]] = m[2];
  }
  return facts;
}

const CARD_KEYS = ['architecture', 'vocabulary', 'corpus', 'tokens seen', 'held-out MLM', 'unigram baseline', 'wall time'];

/** A model's directory when it is here without any download (shipped name or local path). */
function localModelDir(model: string): string | undefined {
  if (model in SHIPPED_MODELS) return shippedModelDir(model as ShippedModel);
  return existsSync(join(model, 'config.json')) ? model : undefined;
}

function modelsTable(rows: readonly ResultRow[], current: Readonly<Record<string, string>>): Table {
  const names = [...new Set(rows.map((r) => r.spec.model))];
  const fingerprintOf = (r: ResultRow) => (r as { modelFingerprint?: string }).modelFingerprint ?? 'unrecorded';
  return names.map((model) => {
    const all = rows.filter((r) => r.spec.model === model);
    // The card describes the weights the name points at now; rows of earlier weights are counted apart.
    const own = current[model] ? all.filter((r) => fingerprintOf(r) === current[model]) : all;
    const fingerprints = [...new Set(own.map(fingerprintOf))];
    const entry: Record<string, string | number> = { model, runs: own.length, fingerprint: fingerprints.join(', ') || current[model] };
    if (own.length < all.length) entry['runs of other weights (left out)'] = all.length - own.length;
    const dir = localModelDir(model);
    const card = dir && existsSync(join(dir, 'README.md')) ? modelCardFacts(readFileSync(join(dir, 'README.md'), 'utf8')) : undefined;
    if (!dir || !existsSync(join(dir, 'config.json'))) entry.card = 'model not available here';
    else if (!card) entry.card = 'no model card';
    for (const key of CARD_KEYS) if (card?.[key]) entry[key] = card[key];
    return entry;
  });
}

function datasetsTable(rows: readonly ResultRow[]): Table {
  const names = [...new Set(rows.map((r) => datasetLabel(r.spec.dataset)))].sort();
  return names.map((name) => {
    const own = rows.filter((r) => datasetLabel(r.spec.dataset) === name);
    const first = own[0];
    const entry = isRegistered(name) ? datasetEntry(name) : undefined;
    return {
      dataset: name,
      task: entry?.task ?? 'user data',
      source: entry?.hubId ?? String(first.spec.dataset.train ?? ''),
      labels: first.numLabels,
      'train examples': first.trainExamples,
      'eval examples': first.evalExamples,
      'max length': first.spec.dataset.maxLength,
      runs: own.length,
      seeds: new Set(own.map((r) => r.spec.seed)).size,
    };
  });
}

function recipeTable(rows: readonly ResultRow[]): Table {
  const seen = new Map<string, { recipe: ResultRow['recipe']; runs: number }>();
  for (const r of rows) {
    const { learningRate, epochs, batchSize, gradientAccumulation, warmupRatio, weightDecay, maxGradNorm } = r.recipe;
    const key = JSON.stringify([learningRate, epochs, batchSize, gradientAccumulation, warmupRatio, weightDecay, maxGradNorm]);
    const entry = seen.get(key) ?? { recipe: r.recipe, runs: 0 };
    entry.runs++;
    seen.set(key, entry);
  }
  return [...seen.values()].map(({ recipe, runs }) => ({
    'learning rate': recipe.learningRate,
    epochs: recipe.epochs,
    'batch size': recipe.batchSize,
    'gradient accumulation': recipe.gradientAccumulation,
    'warmup ratio': recipe.warmupRatio,
    'weight decay': recipe.weightDecay,
    'max grad norm': recipe.maxGradNorm,
    runs,
  }));
}

/** The clean-minus-corrupted accuracy gap after each fine-tuning epoch (F1's second question). */
export function gapByEpochFigure(result: EpochGapResult): Figure {
  return {
    data: [
      {
        type: 'scatter',
        mode: 'lines+markers',
        name: 'mean gap over corrupted runs',
        x: result.perEpoch.map((p) => p.epoch + 1),
        y: result.perEpoch.map((p) => p.gap),
        customdata: result.perEpoch.map((p) => p.n),
        hovertemplate: '%{y:.4f} (n=%{customdata})<extra></extra>',
      },
    ],
    layout: {
      title: { text: 'Does longer fine-tuning close the gap? Clean minus corrupted accuracy per epoch' },
      xaxis: { title: { text: 'Fine-tuning epoch' }, dtick: 1 },
      yaxis: { title: { text: 'Accuracy gap to the clean model' }, rangemode: 'tozero' },
      template: 'plotly_white',
      margin: { t: 60, r: 20, b: 60, l: 70 },
    },
  };
}

const REFERENCE_TRACES: Array<{ key: 'bagOfWords' | 'bagOfWordsFullText' | 'fromScratch'; name: string; symbol: string }> = [
  { key: 'bagOfWords', name: 'bag of words, same examples (TF-IDF + logistic regression)', symbol: 'diamond' },
  { key: 'bagOfWordsFullText', name: 'bag of words on whole texts', symbol: 'diamond-open' },
  { key: 'fromScratch', name: 'same architecture from random weights', symbol: 'x' },
];

/** One marker trace per reference point some dataset has (none when nothing was recorded). */
function referenceTraces(d: readonly BaselineDetail[]): Figure['data'] {
  return REFERENCE_TRACES.filter(({ key }) => d.some((x) => x[key])).map(({ key, name, symbol }) => ({
    type: 'scatter',
    mode: 'markers',
    name,
    x: d.map((x) => x.dataset),
    y: d.map((x) => x[key]?.accuracy ?? null),
    marker: { symbol, size: 12 },
  }));
}

/** Clean accuracy per dataset (mean over seeds, 95 % interval) next to the majority class, and the bag of words and from-scratch runs where recorded. */
export function baselineFigure(finding: Finding<BaselineDetail>): Figure {
  const d = finding.details;
  return {
    data: [
      {
        type: 'bar',
        name: 'clean fine-tuning (mean over seeds)',
        x: d.map((x) => x.dataset),
        y: d.map((x) => x.accuracy),
        error_y: { type: 'data', symmetric: false, array: d.map((x) => x.hi - x.accuracy), arrayminus: d.map((x) => x.accuracy - x.lo), visible: true },
      },
      { type: 'scatter', mode: 'markers', name: 'majority class', x: d.map((x) => x.dataset), y: d.map((x) => x.majority), marker: { symbol: 'line-ew-open', size: 40, line: { width: 3 } } },
      ...referenceTraces(d),
    ],
    layout: {
      title: { text: d.some((x) => x.bagOfWords || x.fromScratch) ? 'Clean baselines: fine-tuned vs bag of words, from scratch and the majority class' : 'Clean baselines: accuracy after fine-tuning vs the majority class' },
      xaxis: { title: { text: 'Dataset' } },
      yaxis: { title: { text: 'Accuracy' }, range: [0, 1] },
      template: 'plotly_white',
      legend: { orientation: 'h', y: -0.2 },
      margin: { t: 60, r: 20, b: 80, l: 70 },
    },
  };
}

/** Findings and their figures from result rows (pure apart from reading model cards). */
export function reportSections(rows: readonly ResultRow[], options: { model?: string; fingerprint?: string } = {}): { sections: ReportSection[]; model: string | undefined; notes: Note[] } {
  const selection = selectRows(rows, options);
  const frame = resultsFrame(selection.rows);
  const [f1, f2, f3] = allFindings(rows, options);
  return {
    model: selection.model,
    notes: selection.notes,
    sections: [
      { id: 'f1', finding: f1, figures: [{ id: 'f1-recovery', figure: recoveryBars(frame) }, { id: 'f1-gap-by-epoch', figure: gapByEpochFigure(f1.longerTraining) }] },
      { id: 'f2', finding: f2, figures: [{ id: 'f2-accuracy-vs-k', figure: accuracyVsK(frame) }] },
      { id: 'f3', finding: f3, figures: [{ id: 'f3-bottom-vs-top', figure: bottomVsTopFigure(frame) }] },
    ],
  };
}

/** Everything the report says, from a results file (and the bag-of-words rows beside it, when there are). */
export async function buildReport(options: { resultsFile: string; model?: string; title?: string; bagOfWordsFile?: string }): Promise<ReportContent> {
  const outcome = readResults(options.resultsFile);
  const notes: string[] = [];
  const warning = storeWarning(options.resultsFile, outcome);
  if (warning) notes.push(warning);
  if (outcome.rows.length === 0) {
    notes.push(`${options.resultsFile} holds no results yet: run \`healing run --preset paper\` (or \`npm start\` for the quick preset) first`);
  }
  // The weights each model name points at now: a re-pretrained `default` must not be outvoted by
  // the rows of its predecessor (they stay in the store, as what they ran).
  const current: Record<string, string> = {};
  for (const name of new Set(outcome.rows.map((r) => r.spec.model))) {
    const f = await currentFingerprint(name);
    if (f) current[name] = f;
  }
  for (const s of staleRows(outcome.rows, current)) {
    notes.push(
      `${s.stale.length} row(s) of model "${s.model}" were made with other weights (fingerprints ${[...new Set(s.stale.map((x) => x.fingerprint))].join(', ')}; ` +
        `${current[s.model] ? 'now' : 'majority'} ${s.fingerprint}) and are left out`,
    );
  }
  const chosenModel = options.model ?? selectRows(outcome.rows).model;
  const selectOptions = { ...options, fingerprint: chosenModel ? current[chosenModel] : undefined };
  const { sections, model, notes: selectionNotes } = reportSections(outcome.rows, selectOptions);
  const selected = selectRows(outcome.rows, selectOptions).rows;
  const bagOfWordsFile = options.bagOfWordsFile ?? defaultBagOfWordsFile(options.resultsFile);
  const bagOfWords = readBagOfWordsRows(bagOfWordsFile);
  const bowWarning = skippedLinesWarning(bagOfWordsFile, bagOfWords);
  if (bowWarning) notes.push(bowWarning);
  if (options.bagOfWordsFile !== undefined && !existsSync(bagOfWordsFile)) notes.push(`${bagOfWordsFile} does not exist: no bag-of-words baseline (\`healing baseline\` records one)`);
  // Rows cut by another tokenizer (an earlier model under the same name) are another baseline.
  const tokenizerFingerprint = model && localModelDir(model) ? (await loadTruncatingTokenizer(model)).fingerprint : undefined;
  const baselines = cleanBaselines(outcome.rows, { ...selectOptions, bagOfWords: bagOfWords.rows, tokenizerFingerprint });
  return {
    title: options.title ?? 'Healing Powers of BERT: reproduction report',
    resultsFile: options.resultsFile,
    rowCount: outcome.rows.length,
    analysedCount: selected.length,
    model,
    setup: {
      models: modelsTable(outcome.rows, current),
      datasets: datasetsTable(selected),
      recipe: recipeTable(selected),
      choices: CHOICES_VS_PAPER,
      baselines,
      // Without clean runs there is nothing to draw (the empty report says so in words).
      figures: baselines.details.length ? [{ id: 'baselines', figure: baselineFigure(baselines) }] : [],
    },
    sections,
    stamp: await provenanceStamp({ resultsFile: options.resultsFile, rows: outcome.rows }),
    // Stale rows have their own note above, with the fingerprints and what to do.
    notes: [...notes, ...selectionNotes.filter((n) => n.kind !== 'stale').map((n) => n.text)],
  };
}

/** "144 runs" or "66 of 144 runs analysed" when the findings leave some out (their notes say why). */
function runsPhrase(content: ReportContent): string {
  return content.analysedCount === content.rowCount ? `${content.rowCount} runs` : `${content.analysedCount} of ${content.rowCount} runs analysed`;
}

// ---------------------------------------------------------------------------------------------
// HTML

const VERDICT_COLOURS: Record<Verdict, string> = {
  supported: '#1b7f3b',
  'not supported': '#b42318',
  inconclusive: '#b54708',
  'not enough data': '#667085',
};

function verdictBadge(verdict: Verdict): string {
  return `<span class="verdict" style="background:${VERDICT_COLOURS[verdict]}">${escapeHtml(verdict)}</span>`;
}

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1d2939; line-height: 1.45; }
h1 { font-size: 1.8em; } h2 { border-bottom: 1px solid #d0d5dd; padding-bottom: .2em; margin-top: 2em; }
table.healing-table { border-collapse: collapse; margin: 1em 0; font-size: .9em; display: block; max-width: 100%; overflow-x: auto; } /* wide tables (models: 11 columns) scroll inside the column, not past it */
table.healing-table th, table.healing-table td { border: 1px solid #d0d5dd; padding: .3em .6em; text-align: left; vertical-align: top; }
table.healing-table th { background: #f2f4f7; }
.verdict { color: white; padding: .15em .6em; border-radius: .8em; font-weight: 600; }
.claim { font-style: italic; } .notes { color: #475467; font-size: .9em; }
nav a { margin-right: 1em; }
code { background: #f2f4f7; padding: 0 .2em; }`;

function stampTable(stamp: ProvenanceStamp): Table {
  return [
    { field: 'package version', value: stamp.packageVersion },
    { field: 'git commit', value: `${stamp.gitCommit}${stamp.gitDirty ? ' (with uncommitted changes)' : ''}` },
    { field: 'engine (this report)', value: stamp.backend },
    { field: 'engines (results)', value: stamp.resultBackends.join(', ') || '-' },
    { field: 'results file', value: stamp.resultsFile ?? '-' },
    { field: 'results sha256', value: stamp.resultsSha256 ?? 'no file' },
    { field: 'result rows', value: stamp.resultRows },
    { field: 'stale rows', value: stamp.staleRows },
    { field: 'model fingerprints', value: Object.entries(stamp.models).map(([m, f]) => `${m}: ${f.join(', ')}`).join('; ') || '-' },
    { field: 'node', value: stamp.node },
    { field: 'date', value: stamp.date },
  ];
}

/** Every figure of the report in page order: the setup's (the clean baselines), then each finding's. */
export function reportFigures(content: ReportContent): ReportFigure[] {
  return [...content.setup.figures, ...content.sections.flatMap((s) => s.figures)];
}

/** The self-contained HTML page: plotly.js inlined once, every figure a div and a newPlot call. */
export function renderHtml(content: ReportContent): string {
  let plotlyIncluded = false;
  const figure = (f: ReportFigure): string => {
    const html = figureHtml(f.figure, { id: f.id, includePlotly: !plotlyIncluded, height: 460 });
    plotlyIncluded = true;
    return `<div class="figure" data-figure="${escapeHtml(f.id)}">${html}</div>`;
  };
  const table = (t: Table) => (t.length ? tableHtml(t, { maxRows: 200 }) : '<p class="notes">(none)</p>');
  // In page order, so plotly.js is inlined with the first figure on the page (the setup's comes first).
  const setupFigures = content.setup.figures.map(figure).join('\n');
  const sections = content.sections
    .map(
      ({ id, finding, figures }) => `<section id="${id}">
<h2>${escapeHtml(finding.title)} ${verdictBadge(finding.verdict)}</h2>
<p class="claim">Claim: ${escapeHtml(finding.claim)}</p>
<p><b>Verdict: ${escapeHtml(finding.verdict)}.</b> ${escapeHtml(finding.summary)}</p>
${figures.map(figure).join('\n')}
${table(finding.table)}
${finding.notes.length ? `<ul class="notes">${finding.notes.map((n) => `<li>${escapeHtml(n.text)}</li>`).join('')}</ul>` : ''}
</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(content.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(content.title)}</h1>
<p>Han, Zhang, Simion (2024), <i>Healing Powers of BERT: How Task-Specific Fine-Tuning Recovers Corrupted Language Models</i>,
reproduced with healing-bert ${escapeHtml(content.stamp.packageVersion)} from <code>${escapeHtml(content.resultsFile)}</code>
(${runsPhrase(content)}${content.model ? `; model <code>${escapeHtml(content.model)}</code>` : ''}). Verdicts are computed from the results, not typed in.</p>
<nav><a href="#setup">Setup</a><a href="#f1">F1</a><a href="#f2">F2</a><a href="#f3">F3</a><a href="#provenance">Provenance</a></nav>
<table class="healing-table"><thead><tr><th>finding</th><th>verdict</th></tr></thead><tbody>
${content.sections.map((s) => `<tr><td><a href="#${s.id}">${escapeHtml(s.finding.title)}</a></td><td>${verdictBadge(s.finding.verdict)}</td></tr>`).join('\n')}
</tbody></table>
<section id="setup">
<h2>Setup</h2>
<h3>Models</h3>${table(content.setup.models)}
<h3>Datasets</h3>${table(content.setup.datasets)}
<h3>Fine-tuning recipe</h3>${table(content.setup.recipe)}
<h3>Our choices vs the paper's</h3>${table(content.setup.choices)}
<h3>Clean baselines ${verdictBadge(content.setup.baselines.verdict)}</h3>
<p>${escapeHtml(content.setup.baselines.summary)}</p>
${setupFigures}
${table(content.setup.baselines.table)}
</section>
${sections}
<section id="provenance">
<h2>Provenance</h2>
${table(stampTable(content.stamp))}
${content.notes.length ? `<ul class="notes">${content.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
<p class="notes">${escapeHtml(stampText(content.stamp))}</p>
</section>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function mdCell(v: unknown): string {
  let text: string;
  if (typeof v === 'number') text = Number.isNaN(v) ? '' : Number.isInteger(v) ? String(v) : Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4 ? v.toExponential(3) : v.toFixed(4);
  else text = v == null ? '' : String(v);
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function markdownTable(rows: Table): string {
  if (rows.length === 0) return '_(none)_\n';
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return [
    `| ${columns.map(mdCell).join(' | ')} |`,
    `| ${columns.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => mdCell(r[c])).join(' | ')} |`),
  ].join('\n') + '\n';
}

/**
 * The Markdown report; `figurePaths` maps figure ids to image paths relative to the .md file (absent
 * when the figures could not be exported, which the text then says).
 */
export function renderMarkdown(content: ReportContent, figurePaths?: Record<string, string>): string {
  const out: string[] = [];
  out.push(`# ${content.title}\n`);
  out.push(
    `Han, Zhang, Simion (2024), *Healing Powers of BERT*, reproduced with healing-bert ${content.stamp.packageVersion} from ` +
      `\`${content.resultsFile}\` (${runsPhrase(content)}${content.model ? `; model \`${content.model}\`` : ''}). Verdicts are computed from the results.\n`,
  );
  out.push(markdownTable(content.sections.map((s) => ({ finding: s.finding.title, verdict: s.finding.verdict }))));
  if (!figurePaths) out.push('> Figures were not exported (no Chromium found: install chromium or set HEALING_CHROMIUM); the HTML report has them.\n');
  out.push('## Setup\n');
  out.push('### Models\n', markdownTable(content.setup.models));
  out.push('### Datasets\n', markdownTable(content.setup.datasets));
  out.push('### Fine-tuning recipe\n', markdownTable(content.setup.recipe));
  out.push("### Our choices vs the paper's\n", markdownTable(content.setup.choices));
  const images = (figures: readonly ReportFigure[]) => {
    for (const f of figures) {
      const path = figurePaths?.[f.id];
      if (path) out.push(`![${titleOf(f.figure)}](${path})\n`);
    }
  };
  out.push(`### Clean baselines (${content.setup.baselines.verdict})\n`, `${content.setup.baselines.summary}\n`);
  images(content.setup.figures);
  out.push(markdownTable(content.setup.baselines.table));
  for (const { finding, figures } of content.sections) {
    out.push(`## ${finding.title}\n`);
    out.push(`*Claim:* ${finding.claim}\n`);
    out.push(`**Verdict: ${finding.verdict}.** ${finding.summary}\n`);
    images(figures);
    out.push(markdownTable(finding.table));
    if (finding.notes.length) out.push(finding.notes.map((n) => `- ${n.text}`).join('\n') + '\n');
  }
  out.push('## Provenance\n');
  out.push(markdownTable(stampTable(content.stamp)));
  if (content.notes.length) out.push(content.notes.map((n) => `- ${n}`).join('\n') + '\n');
  out.push(`\`${stampText(content.stamp)}\`\n`);
  return out.join('\n');
}

function titleOf(figure: Figure): string {
  const t = figure.layout.title as { text?: string } | string | undefined;
  return (typeof t === 'string' ? t : t?.text ?? 'figure').replace(/[[\]]/g, '');
}

// ---------------------------------------------------------------------------------------------
// Writing

function writeAtomic(path: string, data: string): void {
  mkdirSync(dirname(path) || '.', { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export interface WrittenReport {
  out: string;
  format: 'html' | 'md';
  /** PNG files written next to a Markdown report ([] for HTML; false when no browser was found). */
  figures: string[] | false;
  verdicts: Record<string, Verdict>;
}

type WithFigureExporter = <T>(
  fn: (exporter: { export(figure: Figure, path: string, options?: { width?: number; height?: number; scale?: number }): Promise<void> }) => Promise<T>,
) => Promise<T | false>;

/**
 * ./export, loaded only when PNGs are wanted. The specifier is a variable so that TypeScript does not
 * follow it: tslab type-checks every module a notebook imports without the DOM library, and
 * export.ts names `window` (inside a page.evaluate callback), which fails that check.
 */
const EXPORT_MODULE = './export';
// require, not import(): inside the notebook kernel, modules load through tsx's require hook, and a
// dynamic import() would go to Node's own ESM loader, which cannot resolve an extensionless .ts path.
const requireHere = createRequire(import.meta.url);
function figureExporter(): WithFigureExporter {
  return (requireHere(EXPORT_MODULE) as { withFigureExporter: WithFigureExporter }).withFigureExporter;
}

/** Writes the report as HTML or as Markdown with PNG figures in `<name>-figures/` beside it. */
export async function writeReport(content: ReportContent, options: { out: string; format?: 'html' | 'md' }): Promise<WrittenReport> {
  const format = options.format ?? (extname(options.out).toLowerCase() === '.md' ? 'md' : 'html');
  const verdicts = Object.fromEntries(content.sections.map((s) => [s.finding.id, s.finding.verdict]));
  if (format === 'html') {
    writeAtomic(options.out, renderHtml(content));
    return { out: options.out, format, figures: [], verdicts };
  }
  const figureDir = join(dirname(options.out), `${basename(options.out, extname(options.out))}-figures`);
  const withFigureExporter = figureExporter();
  const written = await withFigureExporter(async (exporter) => {
    const paths: string[] = [];
    for (const f of reportFigures(content)) {
      const path = join(figureDir, `${f.id}.png`);
      await exporter.export(f.figure, path, { width: 900, height: 500, scale: 2 });
      paths.push(path);
    }
    return paths;
  });
  const figurePaths = written
    ? Object.fromEntries(reportFigures(content).map((f) => [f.id, relative(dirname(options.out), join(figureDir, `${f.id}.png`)).split('\\').join('/')]))
    : undefined;
  writeAtomic(options.out, renderMarkdown(content, figurePaths));
  return { out: options.out, format, figures: written, verdicts };
}

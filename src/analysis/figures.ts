import type * as dfd from 'danfojs-node';
import { corruptionLabel } from '../experiment/spec';
import type { ResultRow } from '../experiment/spec';
import type { LayerDrift } from './drift';
import { EXTRAPOLATION_LIMIT, formatTokens, type PretrainingBudget } from './pretraining-budget';
import { aggregateOverSeeds, records, type SeedAggregate } from './frames';

/**
 * Figure builders: data in, a plotly figure spec out (plain JSON: data + layout). The same spec is
 * shown in a notebook (display.ts), embedded in the HTML report and exported to PNG/SVG (export.ts),
 * so a figure is defined once. Titles and axis labels use the paper's words.
 */

/** A plotly trace; kept as plain JSON so specs serialise as they are. */
export type Trace = { type: string; name?: string } & Record<string, unknown>;

export interface Figure {
  data: Trace[];
  layout: Record<string, unknown>;
}

const SIDE_NAMES: Record<string, string> = { bottom: 'bottom layers corrupted', top: 'top layers corrupted' };
const METRIC_NAMES: Record<string, string> = {
  accuracy: 'Accuracy',
  macroF1: 'Macro F1',
  recovery: 'Recovery (corrupted / clean accuracy)',
  gap: 'Accuracy gap to the clean model',
};
const metricName = (m: string) => METRIC_NAMES[m] ?? m;

function layout(title: string, xTitle: string, yTitle: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: { text: title },
    xaxis: { title: { text: xTitle } },
    yaxis: { title: { text: yTitle } },
    template: 'plotly_white',
    legend: { orientation: 'h', y: -0.2 },
    margin: { t: 60, r: 20, b: 80, l: 70 },
    ...extra,
  };
}

type Agg = SeedAggregate;

/** Asymmetric error bars from a t interval (NaN where a group has one run: nothing to draw). */
function errorBars(groups: Agg[]): Record<string, unknown> {
  return {
    type: 'data',
    symmetric: false,
    array: groups.map((g) => (g.n > 1 ? g.hi - g.mean : NaN)),
    arrayminus: groups.map((g) => (g.n > 1 ? g.mean - g.lo : NaN)),
    visible: true,
  };
}

const sortedUnique = <T>(values: T[]): T[] => [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * The paper's main picture: accuracy after fine-tuning against the number of corrupted layers k,
 * one line per dataset and side (bottom vs top), mean over seeds with 95 % intervals. The clean run
 * is the k = 0 point of every line.
 */
export function accuracyVsK(frame: dfd.DataFrame, options: { metric?: string } = {}): Figure {
  const metric = options.metric ?? 'accuracy';
  const agg = records<Agg>(aggregateOverSeeds(frame, ['dataset', 'side', 'k'], metric));
  const datasets = sortedUnique(agg.map((g) => String(g.dataset)));
  const data: Trace[] = [];
  for (const dataset of datasets) {
    for (const side of ['bottom', 'top']) {
      const points = agg
        .filter((g) => g.dataset === dataset && (g.side === side || g.side === 'clean'))
        .sort((a, b) => Number(a.k) - Number(b.k));
      if (!points.some((g) => g.side === side)) continue;
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: `${dataset}, ${SIDE_NAMES[side]}`,
        x: points.map((g) => g.k),
        y: points.map((g) => g.mean),
        error_y: errorBars(points),
        line: { dash: side === 'top' ? 'dash' : 'solid' },
        customdata: points.map((g) => g.n),
        hovertemplate: `%{y:.4f} (n=%{customdata})<extra>${dataset} ${side}</extra>`,
      });
    }
  }
  return {
    data,
    layout: layout(`${metricName(metric)} after fine-tuning vs number of corrupted layers`, 'Number of corrupted layers (k)', metricName(metric), {
      xaxis: { title: { text: 'Number of corrupted layers (k)' }, dtick: 1 },
    }),
  };
}

/** Bottom vs top at each dataset and k: grouped bars of the mean over seeds with 95 % intervals. */
export function bottomVsTopFigure(frame: dfd.DataFrame, options: { metric?: string } = {}): Figure {
  const metric = options.metric ?? 'accuracy';
  const agg = records<Agg>(aggregateOverSeeds(frame, ['dataset', 'side', 'k'], metric)).filter((g) => g.side === 'bottom' || g.side === 'top');
  const keys = sortedUnique(agg.map((g) => `${g.dataset}|${String(g.k).padStart(3, '0')}`));
  const label = (key: string) => {
    const [dataset, k] = key.split('|');
    return `${dataset}, k=${Number(k)}`;
  };
  const data: Trace[] = ['bottom', 'top'].map((side) => {
    const groups = keys.map((key) => agg.find((g) => `${g.dataset}|${String(g.k).padStart(3, '0')}` === key && g.side === side));
    const present = groups.map((g) => g ?? { n: 0, mean: NaN, std: NaN, lo: NaN, hi: NaN });
    return {
      type: 'bar',
      name: SIDE_NAMES[side],
      x: keys.map(label),
      y: present.map((g) => g.mean),
      error_y: errorBars(present),
    };
  });
  return {
    data,
    layout: layout(`Bottom vs top corruption: ${metricName(metric).toLowerCase()} after fine-tuning`, 'Dataset and number of corrupted layers', metricName(metric), { barmode: 'group' }),
  };
}

/** Recovery per corruption (x) and dataset (one bar series each), mean over seeds with 95 % intervals. */
export function recoveryBars(frame: dfd.DataFrame): Figure {
  const agg = records<Agg>(aggregateOverSeeds(frame, ['dataset', 'corruption'], 'recovery')).filter(
    (g) => g.corruption !== 'clean' && g.n > 0,
  );
  const corruptions = sortedUnique(agg.map((g) => String(g.corruption)));
  const datasets = sortedUnique(agg.map((g) => String(g.dataset)));
  const data: Trace[] = datasets.map((dataset) => {
    const groups = corruptions.map((c) => agg.find((g) => g.dataset === dataset && g.corruption === c) ?? { n: 0, mean: NaN, std: NaN, lo: NaN, hi: NaN });
    return { type: 'bar', name: dataset, x: corruptions, y: groups.map((g) => g.mean), error_y: errorBars(groups) };
  });
  return {
    data,
    layout: layout('Recovery after fine-tuning (corrupted accuracy / clean accuracy)', 'Corruption', 'Recovery', {
      barmode: 'group',
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 1, y1: 1, line: { dash: 'dot', width: 1 } }],
    }),
  };
}

/**
 * Fine-tuning loss against step, averaged over the runs of each group (default: by corruption), so
 * the speed of healing is visible next to where it ends.
 */
export function learningCurves(rows: readonly ResultRow[], options: { groupBy?: (row: ResultRow) => string } = {}): Figure {
  const groupBy = options.groupBy ?? ((row: ResultRow) => corruptionLabel(row.spec));
  const groups = new Map<string, Map<number, number[]>>();
  for (const row of rows) {
    const name = groupBy(row);
    let steps = groups.get(name);
    if (!steps) groups.set(name, (steps = new Map()));
    for (const { step, loss } of row.lossCurve) {
      if (loss == null || !Number.isFinite(loss)) continue;
      const list = steps.get(step) ?? [];
      list.push(loss);
      steps.set(step, list);
    }
  }
  const data: Trace[] = [...groups.keys()].sort().map((name) => {
    const steps = [...groups.get(name)!.entries()].sort((a, b) => a[0] - b[0]);
    return {
      type: 'scatter',
      mode: 'lines',
      name,
      x: steps.map(([s]) => s),
      y: steps.map(([, losses]) => losses.reduce((a, b) => a + b, 0) / losses.length),
    };
  });
  return { data, layout: layout('Fine-tuning loss (mean over seeds)', 'Training step', 'Training loss') };
}

/**
 * A layer x dataset heatmap of a metric for single-layer corruptions (k = 1): which layer hurts most
 * to lose. Layer indices come from the frame's `layers` column (bottom:1 is layer 0).
 */
export function layerHeatmap(frame: dfd.DataFrame, options: { metric?: string } = {}): Figure {
  const metric = options.metric ?? 'recovery';
  const single = records<Record<string, unknown>>(frame).filter((r) => r.k === 1 && /^\d+$/.test(String(r.layers)));
  const withLayer: Array<Record<string, unknown> & { layer: number }> = single.map((r) => ({ ...r, layer: Number(r.layers) }));
  const datasets = sortedUnique(withLayer.map((r) => String(r.dataset)));
  const layers = sortedUnique(withLayer.map((r) => r.layer));
  const z = datasets.map((d) =>
    layers.map((l) => {
      const vals = withLayer.filter((r) => r.dataset === d && r.layer === l).map((r) => Number(r[metric])).filter(Number.isFinite);
      return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
    }),
  );
  return {
    data: [{ type: 'heatmap', x: layers, y: datasets, z, colorscale: 'Viridis', colorbar: { title: { text: metricName(metric) } } }],
    layout: layout(`${metricName(metric)} when one layer is corrupted`, 'Corrupted layer (0 = bottom)', 'Dataset', {
      xaxis: { title: { text: 'Corrupted layer (0 = bottom)' }, dtick: 1 },
    }),
  };
}

/** Linear CKA to the clean model per layer, one line per condition. */
export function ckaPerLayer(series: ReadonlyArray<{ name: string; cka: readonly number[] }>): Figure {
  return {
    data: series.map((s) => ({ type: 'scatter', mode: 'lines+markers', name: s.name, x: s.cka.map((_, i) => i), y: [...s.cka] })),
    layout: layout('Representation similarity to the clean model (linear CKA)', 'Layer (0 = bottom)', 'Linear CKA', {
      yaxis: { title: { text: 'Linear CKA' }, range: [0, 1.05] },
      xaxis: { title: { text: 'Layer (0 = bottom)' }, dtick: 1 },
    }),
  };
}

/** Relative weight change during fine-tuning per layer (embeddings, layers, pooler, head). */
export function driftBars(drift: readonly LayerDrift[], name = 'relative change'): Figure {
  return {
    data: [{ type: 'bar', name, x: drift.map((d) => d.layer), y: drift.map((d) => d.relativeChange) }],
    layout: layout('Weight drift during fine-tuning', 'Layer', '||after - before|| / ||before||'),
  };
}

// Plotly's default colourway, so a dataset keeps its colour across its points, line and targets.
const COLOURS = ['#636efa', '#ef553b', '#00cc96', '#ab63fa', '#ffa15a', '#19d3f3'];
// Where "from scratch" (0 tokens) sits on the log axis: a decade below the smallest checkpoint.
const SCRATCH_DECADES_BELOW = 1;

/**
 * Accuracy after fine-tuning against the tokens the model was pretrained on (log axis; from scratch at
 * the left edge), per dataset: mean over seeds with 95 % intervals, the line through the pretrained
 * checkpoints continued (dotted) to where it meets each target that is still missed (x markers).
 */
export function pretrainingBudgetFigure(budget: PretrainingBudget): Figure {
  const pretrained = budget.points.filter((p) => p.tokensSeen > 0).map((p) => p.tokensSeen);
  const smallest = pretrained.length ? Math.min(...pretrained) : 1e6;
  const scratchX = 10 ** (Math.floor(Math.log10(smallest)) - SCRATCH_DECADES_BELOW);
  const reachTokens = budget.fits.flatMap((f) => f.reach.filter((r) => !r.reached && Number.isFinite(r.tokens)).map((r) => r.tokens));
  // Past EXTRAPOLATION_LIMIT x the largest checkpoint a line says nothing; its targets are drawn at that edge.
  const edge = Math.max(...pretrained, 1) * EXTRAPOLATION_LIMIT;
  const right = Math.min(Math.max(...pretrained, ...reachTokens, 1), edge);
  const data: Trace[] = [];
  const datasets = sortedUnique(budget.points.map((p) => p.dataset));
  datasets.forEach((dataset, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const own = budget.points.filter((p) => p.dataset === dataset);
    const x = own.map((p) => (p.tokensSeen > 0 ? p.tokensSeen : scratchX));
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: dataset,
      x,
      y: own.map((p) => p.accuracy),
      error_y: errorBars(own.map((p) => ({ n: p.seeds.length, mean: p.accuracy, lo: p.lo, hi: p.hi, std: NaN }))),
      marker: { color: colour, symbol: own.map((p) => (p.finished ? 'circle' : 'circle-open')) },
      line: { color: colour },
      customdata: own.map((p) => `${p.model}, ${p.seeds.length} seeds${p.finished ? '' : ', mid-run snapshot'}`),
      hovertemplate: `%{y:.4f} (%{customdata})<extra>${dataset}</extra>`,
    });
    const fit = budget.fits.find((f) => f.dataset === dataset);
    if (!fit) return;
    const from = Math.min(...own.filter((p) => p.tokensSeen > 0).map((p) => p.tokensSeen));
    const xs = [from, right];
    data.push({
      type: 'scatter',
      mode: 'lines',
      name: `${dataset}: line through the checkpoints`,
      x: xs,
      y: xs.map((t) => fit.intercept + fit.slope * Math.log10(t)),
      line: { color: colour, dash: 'dot' },
      hovertemplate: `${(100 * fit.slope).toFixed(1)} points per 10x tokens<extra>${dataset}</extra>`,
    });
    const missed = fit.reach.filter((r) => !r.reached);
    if (missed.length) {
      data.push({
        type: 'scatter',
        mode: 'markers',
        name: `${dataset}: targets`,
        x: missed.map((r) => Math.min(Number.isFinite(r.tokens) ? r.tokens : edge, edge)),
        y: missed.map((r) => r.accuracy),
        marker: { color: colour, symbol: 'x', size: 10 },
        text: missed.map((r) => `${r.name}: ${!Number.isFinite(r.tokens) ? 'not on this line' : r.beyondRange ? `more than ${formatTokens(edge)} tokens` : `${formatTokens(r.tokens)} tokens`}`),
        hovertemplate: `%{text}<extra>${dataset}</extra>`,
      });
    }
  });
  const decades: number[] = [];
  for (let t = scratchX * 10; t <= right * 1.0001; t *= 10) decades.push(t);
  const tick = (t: number) => (t >= 1e9 ? `${t / 1e9}B` : t >= 1e6 ? `${t / 1e6}M` : `${t / 1e3}k`);
  return {
    data,
    layout: layout('What pretraining is worth: clean accuracy after fine-tuning vs tokens pretrained on', 'Tokens seen in pretraining (log scale)', 'Accuracy', {
      xaxis: {
        title: { text: 'Tokens seen in pretraining (log scale; open marker: mid-run snapshot)' },
        type: 'log',
        tickvals: [scratchX, ...decades],
        ticktext: ['from scratch', ...decades.map(tick)],
      },
    }),
  };
}

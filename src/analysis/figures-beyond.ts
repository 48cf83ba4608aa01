import type { Figure, Trace } from './figures';
import type { ComponentCell, EffectCell, FewSampleCell } from './findings/beyond';

/**
 * Figures of notebook 09 (beyond the paper), from the cells of src/analysis/findings/beyond.ts: plain
 * plotly specs like figures.ts's, so show(), the report and export take them as they are. Values are
 * accuracy points (x 100) with the paired 95 % intervals the verdicts use; NaN where a cell has one seed.
 */

const POINTS = 100;

/** Asymmetric error bars of a cell's interval around `value` (both in accuracy, drawn in points). */
function intervalBars(cells: readonly EffectCell[], value: (c: EffectCell) => number, lo: (c: EffectCell) => number, hi: (c: EffectCell) => number): Record<string, unknown> {
  return {
    type: 'data',
    symmetric: false,
    array: cells.map((c) => (c.pairs >= 2 ? POINTS * (hi(c) - value(c)) : NaN)),
    arrayminus: cells.map((c) => (c.pairs >= 2 ? POINTS * (value(c) - lo(c)) : NaN)),
    visible: true,
  };
}

function beyondLayout(title: string, xaxis: Record<string, unknown>, yTitle: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: { text: title },
    xaxis,
    yaxis: { title: { text: yTitle }, zeroline: true, zerolinewidth: 2 },
    template: 'plotly_white',
    legend: { orientation: 'h', y: -0.25 },
    margin: { t: 60, r: 20, b: 90, l: 70 },
    ...extra,
  };
}

/**
 * (a) Corrupted minus clean accuracy against the number of training examples (log axis), one line per
 * mode and K: above 0 the re-initialisation helps, below it hurts; error bars are the paired intervals.
 */
export function fewSampleFigure(cells: readonly FewSampleCell[]): Figure {
  const lines = [...new Set(cells.map((c) => JSON.stringify([c.dataset, c.mode, c.k])))].sort();
  const datasets = new Set(cells.map((c) => c.dataset));
  const data: Trace[] = lines.map((id) => {
    const [dataset, mode, k] = JSON.parse(id) as [string, string, number];
    const own = cells.filter((c) => c.dataset === dataset && c.mode === mode && c.k === k).sort((a, b) => a.trainSize - b.trainSize);
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: `${datasets.size > 1 ? `${dataset}, ` : ''}${mode}, top:${k} + pooler`,
      x: own.map((c) => c.trainSize),
      y: own.map((c) => POINTS * c.meanDiff),
      error_y: intervalBars(own, (c) => c.meanDiff, (c) => c.ci95[0], (c) => c.ci95[1]),
      line: { dash: mode === 'reinit-hf' ? 'solid' : 'dash' },
      customdata: own.map((c) => [c.pairs, c.effect]),
      hovertemplate: `%{y:.1f} points (n=%{customdata[0]}, %{customdata[1]})<extra>${mode} top:${k}</extra>`,
    };
  });
  return {
    data,
    layout: beyondLayout(
      'Re-initialising the top layers: accuracy minus clean vs training examples',
      { title: { text: 'Training examples' }, type: 'log', tickvals: [...new Set(cells.map((c) => c.trainSize))].sort((a, b) => a - b) },
      'Corrupted - clean accuracy (points)',
    ),
  };
}

/**
 * (b) Drop from clean per dataset and component (x), bottom:K vs top:K (bar series), with the paired
 * intervals: a bar whose interval stays above 0 is a component whose corruption hurts.
 */
export function componentFigure(cells: readonly ComponentCell[]): Figure {
  const keyOf = (c: ComponentCell) => `${c.dataset} · ${c.component === 'all' ? 'whole layers' : c.component}`;
  const keys: string[] = [];
  for (const c of cells) if (!keys.includes(keyOf(c))) keys.push(keyOf(c));
  const series = [...new Set(cells.map((c) => `${c.side}:${c.k}`))].sort();
  const data: Trace[] = series.map((name) => {
    const own = keys.map((key) => cells.find((c) => keyOf(c) === key && `${c.side}:${c.k}` === name));
    const present = own.map((c) => c ?? ({ pairs: 0, drop: NaN, meanDiff: NaN, ci95: [NaN, NaN] } as unknown as ComponentCell));
    return {
      type: 'bar',
      name: `${name} corrupted`,
      x: keys,
      y: present.map((c) => POINTS * c.drop),
      // drop = -(corrupted - clean): its interval is the negated one.
      error_y: intervalBars(present, (c) => -c.meanDiff, (c) => -c.ci95[1], (c) => -c.ci95[0]),
      customdata: present.map((c) => [c.pairs, (c as ComponentCell).effect ?? '']),
      hovertemplate: `%{y:.1f} points (n=%{customdata[0]}, %{customdata[1]})<extra>${name}</extra>`,
    };
  });
  return {
    data,
    layout: beyondLayout('Which component matters: drop from clean accuracy after fine-tuning', { title: { text: 'Dataset and corrupted component' } }, 'Clean - corrupted accuracy (points)', {
      barmode: 'group',
    }),
  };
}

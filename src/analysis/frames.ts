import * as dfd from 'danfojs-node';
import { withRecovery, type RowWithRecovery } from '../experiment/recovery';
import { corruptionLabel, datasetLabel, type ResultRow } from '../experiment/spec';
import { readResults, storeWarning } from '../experiment/store';
import { pairedTest, summarise, type PairedTest } from './stats';

/**
 * The result store as a table: one row per run, flat columns named in the paper's terms, so a
 * notebook cell is a filter, a group and a picture. Missing numbers (a diverged run's accuracy, a
 * run without a clean partner's recovery) are NaN, which every aggregation here skips.
 */

/** Where the corruption sits: the paper's bottom vs top, an explicit layer list, a fraction, or none. */
export type Side = 'clean' | 'scratch' | 'bottom' | 'top' | 'list' | 'fraction';

export interface FlatRow {
  hash: string;
  dataset: string;
  model: string;
  /** "clean", "scratch" or the short corruption label, e.g. "bottom:2/all/reinit". */
  corruption: string;
  side: Side;
  /** Number of corrupted layers (0 for clean; NaN when unknown, e.g. training from scratch). */
  k: number;
  /** The corrupted layer indices, "0,1" (empty for clean). */
  layers: string;
  components: string;
  mode: string;
  seed: number;
  accuracy: number;
  macroF1: number;
  recovery: number;
  gap: number;
  status: string;
  epochs: number;
  seconds: number;
  backend: string;
}

export const RESULT_COLUMNS: ReadonlyArray<keyof FlatRow> = [
  'hash', 'dataset', 'model', 'corruption', 'side', 'k', 'layers', 'components', 'mode', 'seed',
  'accuracy', 'macroF1', 'recovery', 'gap', 'status', 'epochs', 'seconds', 'backend',
];

const num = (v: number | null | undefined): number => (v == null || !Number.isFinite(v) ? NaN : v);

/** Reads "bottom:2", "top:3", "0,3,5" or "0.5" (a share of the layers) into a side and, where the spec alone tells, k. */
export function parseLayerSpec(layers: string): { side: Side; k: number; list?: number[] } {
  const s = layers.trim();
  const m = /^(bottom|top)\s*:\s*(\d+)$/i.exec(s);
  if (m) return { side: m[1].toLowerCase() as Side, k: Number(m[2]) };
  if (/^\d+(\s*,\s*\d+)*$/.test(s)) {
    const list = s.split(',').map((x) => Number(x.trim()));
    return { side: 'list', k: list.length, list };
  }
  return { side: 'fraction', k: NaN };
}

/** One result row flattened (pure). Recovery comes from `withRecovery` when the row has it. */
export function flattenRow(row: RowWithRecovery | ResultRow): FlatRow {
  const spec = row.spec;
  const c = spec.corruption;
  let side: Side = 'clean';
  let k = 0;
  let layers = '';
  if (spec.fromScratch) {
    side = 'scratch';
    k = NaN;
  } else if (c) {
    const parsed = parseLayerSpec(c.layers);
    side = parsed.side;
    // The runner records the layers it actually touched; prefer them over what the spec implies.
    const realised = row.corruption?.layers ?? parsed.list;
    k = realised ? realised.length : parsed.k;
    layers = realised ? realised.join(',') : c.layers;
  }
  const r = row as RowWithRecovery;
  return {
    hash: row.hash,
    dataset: datasetLabel(spec.dataset),
    model: spec.model,
    corruption: corruptionLabel(spec),
    side,
    k,
    layers,
    components: c ? c.components.join('+') : '',
    mode: c ? c.mode : spec.fromScratch ? 'scratch' : 'none',
    seed: spec.seed,
    accuracy: num(row.final.accuracy),
    macroF1: num(row.final.macroF1),
    recovery: num(r.recovery),
    gap: num(r.gap),
    status: row.status,
    epochs: row.epochs.length,
    seconds: num(row.timings.seconds),
    backend: row.provenance.backend,
  };
}

/** Result rows -> a danfojs DataFrame, one row per run, recovery computed against the matching clean run. */
export function resultsFrame(rows: readonly ResultRow[]): dfd.DataFrame {
  return frameOf(withRecovery(rows).map(flattenRow), RESULT_COLUMNS as string[]);
}

/** resultsFrame of a store file; skipped lines are reported on stderr, never silently. */
export function loadResultsFrame(file: string): dfd.DataFrame {
  const outcome = readResults(file);
  const warning = storeWarning(file, outcome);
  if (warning) process.stderr.write(`${warning}\n`);
  return resultsFrame(outcome.rows);
}

/** A DataFrame from plain records; an empty table keeps its columns (danfojs can't infer them from nothing). */
export function frameOf(records: ReadonlyArray<object>, columns: string[]): dfd.DataFrame {
  if (records.length === 0) return new dfd.DataFrame([], { columns });
  return new dfd.DataFrame(records.map((r) => ({ ...r })), { columns });
}

/** The frame's rows as plain objects (column -> value). */
export function records<T = Record<string, unknown>>(frame: dfd.DataFrame): T[] {
  if (frame.shape[0] === 0) return [];
  return dfd.toJSON(frame, { format: 'column' }) as T[];
}

/** One group of aggregateOverSeeds: its `by` columns plus these. */
export interface SeedAggregate {
  n: number;
  mean: number;
  std: number;
  lo: number;
  hi: number;
  [column: string]: unknown;
}

/**
 * Mean, std and 95 % t interval of `metric` over seeds for each group of `by` columns. NaN values
 * (diverged runs, missing partners) are left out of n. Groups keep their first-seen order.
 */
export function aggregateOverSeeds(frame: dfd.DataFrame, by: string[], metric: string): dfd.DataFrame {
  for (const col of [...by, metric]) {
    if (!frame.columns.includes(col)) throw new RangeError(`aggregateOverSeeds: no column "${col}" (have ${frame.columns.join(', ')})`);
  }
  const groups = new Map<string, { key: Record<string, unknown>; values: number[] }>();
  for (const row of records(frame)) {
    const key = Object.fromEntries(by.map((c) => [c, row[c]]));
    const id = JSON.stringify(by.map((c) => row[c]));
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { key, values: [] }));
    const v = Number(row[metric]);
    if (Number.isFinite(v)) g.values.push(v);
  }
  const out = [...groups.values()].map(({ key, values }) => {
    if (values.length === 0) return { ...key, n: 0, mean: NaN, std: NaN, lo: NaN, hi: NaN };
    const s = summarise(values);
    return { ...key, n: s.n, mean: s.mean, std: s.std, lo: s.ci95[0], hi: s.ci95[1] };
  });
  return frameOf(out, [...by, 'n', 'mean', 'std', 'lo', 'hi']);
}

export interface PairedComparison extends PairedTest {
  /** The matched pairs, with the values of the `match` columns. */
  pairs: Array<{ key: Record<string, unknown>; a: number; b: number }>;
  /** Rows of arm a or b that found no partner (or had NaN in the metric). */
  unmatched: number;
}

/**
 * A paired comparison inside one frame: rows where `column` is `a` against rows where it is `b`,
 * matched on the `match` columns (e.g. compare side bottom vs top, matched on dataset, k and seed).
 */
export function pairedComparison(
  frame: dfd.DataFrame,
  options: { column: string; a: unknown; b: unknown; match: string[]; metric: string },
): PairedComparison {
  const { column, a, b, match, metric } = options;
  const arm = new Map<string, { key: Record<string, unknown>; a?: number; b?: number }>();
  let unmatched = 0;
  for (const row of records(frame)) {
    if (row[column] !== a && row[column] !== b) continue;
    const v = Number(row[metric]);
    if (!Number.isFinite(v)) {
      unmatched++;
      continue;
    }
    const id = JSON.stringify(match.map((c) => row[c]));
    let entry = arm.get(id);
    if (!entry) arm.set(id, (entry = { key: Object.fromEntries(match.map((c) => [c, row[c]])) }));
    const which = row[column] === a ? 'a' : 'b';
    if (entry[which] !== undefined) throw new RangeError(`pairedComparison: two rows for ${column}=${String(row[column])} at ${id}; add a column to match on`);
    entry[which] = v;
  }
  const pairs: PairedComparison['pairs'] = [];
  for (const e of arm.values()) {
    if (e.a !== undefined && e.b !== undefined) pairs.push({ key: e.key, a: e.a, b: e.b });
    else unmatched++;
  }
  const test = pairedTest(pairs.map((p) => p.a), pairs.map((p) => p.b));
  return { ...test, pairs, unmatched };
}

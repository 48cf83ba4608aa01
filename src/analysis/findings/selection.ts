import { numericsOf } from '../../backend/numerics';
import { canonicalJson } from '../../experiment/hash';
import { withRecovery, type RowWithRecovery } from '../../experiment/recovery';
import { datasetLabel, type ResultRow } from '../../experiment/spec';
import type { FlatRow } from '../frames';
import { Note } from './finding';

/** Rows whose model fingerprint differs from the model's current one (given) or else the majority for the same model name. */
export interface StaleRows {
  model: string;
  /** The fingerprint most rows of this model carry. */
  fingerprint: string;
  stale: Array<{ hash: string; label: string; fingerprint: string }>;
}

const fingerprintOf = (row: ResultRow): string | undefined => {
  const f = (row as { modelFingerprint?: unknown }).modelFingerprint;
  return typeof f === 'string' ? f : undefined;
};

function majority<T>(values: readonly T[]): T | undefined {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: T | undefined;
  let bestCount = 0;
  for (const [v, c] of counts) if (c > bestCount) [best, bestCount] = [v, c];
  return best;
}

/**
 * Stale results: a model name ("default") that pointed at other weights when some rows were made
 * (the shipped model was re-pretrained). Rows without a fingerprint (older runners) are not judged.
 */
export function staleRows(rows: readonly ResultRow[], current: Readonly<Record<string, string>> = {}): StaleRows[] {
  const byModel = new Map<string, ResultRow[]>();
  for (const row of rows) {
    if (!fingerprintOf(row)) continue;
    const list = byModel.get(row.spec.model) ?? [];
    list.push(row);
    byModel.set(row.spec.model, list);
  }
  const out: StaleRows[] = [];
  for (const [model, list] of byModel) {
    const fingerprint = current[model] ?? majority(list.map((r) => fingerprintOf(r)!))!;
    const stale = list
      .filter((r) => fingerprintOf(r) !== fingerprint)
      .map((r) => ({ hash: r.hash, label: r.label, fingerprint: fingerprintOf(r)! }));
    if (stale.length) out.push({ model, fingerprint, stale });
  }
  return out;
}

/** What a run was trained on and how, apart from corruption and seed: runs compare only within one. */
function settingKey(row: ResultRow): string {
  const { dataset, recipe, fromScratch } = row.spec;
  return canonicalJson({ dataset, recipe, fromScratch });
}

export interface Selection {
  model: string | undefined;
  rows: RowWithRecovery[];
  notes: Note[];
}

/**
 * The rows a finding may compare: one model, its majority weights, and per dataset one setting
 * (subset sizes, max length, recipe). Mixing a quick run with a paper run of the same dataset would
 * average two different experiments, so the setting with the most runs wins and the rest are named.
 */
export function selectRows(rows: readonly ResultRow[], options: { model?: string; fingerprint?: string } = {}): Selection {
  const notes: Note[] = [];
  const models = [...new Set(rows.map((r) => r.spec.model))];
  const model = options.model ?? majority(rows.map((r) => r.spec.model));
  if (model === undefined) return { model, rows: [], notes: [new Note('no rows', 'no result rows')] };
  if (models.length > 1) {
    const others = models.filter((m) => m !== model);
    notes.push(new Note('other model', `analysing model "${model}"; ${rows.filter((r) => r.spec.model !== model).length} row(s) of ${others.map((m) => `"${m}"`).join(', ')} left out`));
  }
  let chosen = rows.filter((r) => r.spec.model === model);
  const stale = staleRows(chosen, options.fingerprint ? { [model]: options.fingerprint } : {});
  if (stale.length) {
    const staleHashes = new Set(stale.flatMap((s) => s.stale.map((x) => x.hash)));
    notes.push(
      new Note('stale', `${staleHashes.size} stale row(s) of "${model}" left out: made with other weights than ${options.fingerprint ? 'the model has now' : 'the majority'} (fingerprint ${stale[0].fingerprint})`),
    );
    chosen = chosen.filter((r) => !staleHashes.has(r.hash));
  }
  // One engine's arithmetic: a spec rerun on the native engine (numerics native-1) next to its stock TF.js
  // row (tfjs-1) is the same experiment twice, not two seeds. The numerics with the most rows wins.
  const numerics = majority(chosen.map(numericsOf));
  const otherNumerics = chosen.filter((r) => numericsOf(r) !== numerics);
  if (otherNumerics.length) {
    const names = [...new Set(otherNumerics.map(numericsOf))].join(', ');
    notes.push(new Note('other numerics', `analysing numerics ${numerics}; ${otherNumerics.length} row(s) of numerics ${names} left out (another engine's arithmetic)`));
    chosen = chosen.filter((r) => numericsOf(r) === numerics);
  }
  const before = chosen.length;
  chosen = chosen.filter((r) => !r.spec.fromScratch);
  if (chosen.length < before) notes.push(new Note('from scratch', `${before - chosen.length} from-scratch row(s) left out (not a corruption)`));
  const byDataset = new Map<string, ResultRow[]>();
  for (const r of chosen) {
    const name = datasetLabel(r.spec.dataset);
    byDataset.set(name, [...(byDataset.get(name) ?? []), r]);
  }
  const kept: ResultRow[] = [];
  for (const [name, list] of byDataset) {
    const setting = majority(list.map(settingKey))!;
    const same = list.filter((r) => settingKey(r) === setting);
    if (same.length < list.length) notes.push(new Note('other setting', `${name}: ${list.length - same.length} row(s) with other subset sizes or recipe left out`, name));
    kept.push(...same);
  }
  // Recovery pairs each row with the clean run of its setting and seed, inside the selection.
  return { model, rows: withRecovery(kept), notes };
}

/** The corruption most bottom/top rows use (e.g. all/reinit): F2 and F3 compare only like with like. */
export function standardCorruption(flat: FlatRow[]): { components: string; mode: string } | undefined {
  const sided = flat.filter((r) => r.side === 'bottom' || r.side === 'top');
  const key = majority(sided.map((r) => `${r.components}|${r.mode}`));
  if (!key) return undefined;
  const [components, mode] = key.split('|');
  return { components, mode };
}

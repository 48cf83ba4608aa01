import { canonicalJson } from './hash';
import type { ResultRow } from './spec';

/**
 * The paper's measure: how much of the clean model's accuracy a corrupted model gets back after the
 * same fine-tuning. Each row is compared with the clean run (no corruption, not from scratch) that
 * shares everything else: model, dataset with its sizes and max length, recipe and seed.
 */
export type RowWithRecovery = ResultRow & {
  /** corrupted accuracy / clean accuracy (1 for the clean row itself). */
  recovery?: number;
  /** clean accuracy - corrupted accuracy. */
  gap?: number;
  cleanAccuracy?: number;
  cleanHash?: string;
};

function pairingKey(row: ResultRow): string {
  const { model, dataset, recipe, seed } = row.spec;
  return canonicalJson({ model, dataset, recipe, seed });
}

function isClean(row: ResultRow): boolean {
  return row.spec.corruption === null && !row.spec.fromScratch;
}

/** Pure: returns new row objects; rows without a usable clean partner get no recovery. */
export function withRecovery(rows: readonly ResultRow[]): RowWithRecovery[] {
  const clean = new Map<string, ResultRow>();
  for (const row of rows) {
    const key = pairingKey(row);
    if (isClean(row) && !clean.has(key)) clean.set(key, row);
  }
  return rows.map((row) => {
    const partner = clean.get(pairingKey(row));
    const cleanAcc = partner?.final.accuracy;
    const acc = row.final.accuracy;
    if (!partner || cleanAcc == null || !Number.isFinite(cleanAcc) || cleanAcc <= 0 || acc == null || !Number.isFinite(acc)) {
      return { ...row };
    }
    return { ...row, recovery: acc / cleanAcc, gap: cleanAcc - acc, cleanAccuracy: cleanAcc, cleanHash: partner.hash };
  });
}

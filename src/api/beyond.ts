/**
 * Beyond the paper (notebook 09): two related results judged on the same model and data as F1-F3.
 *
 * (a) Zhang et al. 2021, "Revisiting Few-sample BERT Fine-tuning": does re-initialising the top K layers
 * and the pooler help with few training examples ({@link fewSampleReinit}, drawn by {@link fewSampleFigure})?
 * (b) After Kovaleva et al. 2021: which component matters, LayerNorm, attention or the feed-forward block
 * of bottom:K vs top:K ({@link componentStudy}, drawn by {@link componentFigure})?
 *
 * Both are judged by {@link EFFECT_RULE}, fixed before the data. {@link beyondParameters} gives the
 * notebook's parameters (quick or full mode, as `notebookParameters`), {@link loadBeyond} the rows: in full
 * mode those of the `few-sample-reinit` and `components` presets recorded in {@link BEYOND_RESULTS_FILE},
 * naming any missing run with the command that records it.
 *
 * ```ts
 * import { beyond, show } from 'healing-bert';
 * const P = beyond.beyondParameters();
 * const rows = await beyond.loadBeyond(P);
 * const a = beyond.fewSampleReinit(rows.fewSampleRows, { model: P.model });
 * show(beyond.fewSampleFigure(a.cells));
 * console.log(`${a.verdict}: ${a.summary}`);
 * ```
 *
 * @module
 */
export { BEYOND_RESULTS_FILE, beyondParameters, loadBeyond, type BeyondParameters, type BeyondStudy } from '../analysis/beyond-study';
export {
  EFFECT_RULE,
  componentStudy,
  fewSampleReinit,
  type BeyondResult,
  type ComponentCell,
  type ComponentResult,
  type ComponentSideGap,
  type Effect,
  type EffectCell,
  type FewSampleCell,
  type FewSampleResult,
  type FewSampleTrend,
} from '../analysis/findings/beyond';
export { componentFigure, fewSampleFigure } from '../analysis/figures-beyond';
// What BeyondStudy.outcome holds: the grid's counts for the runs loadBeyond looked up (and ran, with runMissing).
export type { EnsureOutcome } from '../analysis/study';

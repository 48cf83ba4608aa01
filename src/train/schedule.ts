/**
 * Learning-rate schedules, as functions from an optimizer step index to a learning rate.
 */

export interface LinearScheduleOptions {
  peakLr: number;
  totalSteps: number;
  warmupSteps: number;
}

/**
 * Hugging Face's get_linear_schedule_with_warmup: linear warmup from 0 to peakLr over warmupSteps,
 * then linear decay to 0 at totalSteps, never below 0.
 *
 * `step` is the 0-based index of the optimizer step about to be taken, i.e. the number of steps
 * already taken. As in HF (where scheduler.step() follows optimizer.step()), the very first update
 * therefore uses lr 0 when there is warmup.
 */
export function linearSchedule({ peakLr, totalSteps, warmupSteps }: LinearScheduleOptions): (step: number) => number {
  if (!(peakLr >= 0) || !Number.isFinite(peakLr)) throw new RangeError(`linearSchedule: peakLr ${peakLr} must be a finite number >= 0`);
  if (!Number.isInteger(totalSteps) || totalSteps < 0) throw new RangeError(`linearSchedule: totalSteps ${totalSteps} must be a whole number >= 0`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new RangeError(`linearSchedule: warmupSteps ${warmupSteps} must be a whole number >= 0`);
  }
  return (step: number): number => {
    if (step < warmupSteps) return (peakLr * step) / Math.max(1, warmupSteps);
    return peakLr * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  };
}

/** Warmup steps from a ratio of the total, rounded up as HF TrainingArguments.get_warmup_steps does. */
export function warmupStepsFrom(totalSteps: number, warmupRatio: number): number {
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw new RangeError(`warmup ratio ${warmupRatio} must be in [0, 1]`);
  return Math.ceil(totalSteps * warmupRatio);
}

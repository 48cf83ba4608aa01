import cliProgress from 'cli-progress';

/**
 * One progress bar style for every long job (downloads, fine-tuning, pretraining, grids): value,
 * rate and ETA, plus free-form fields (loss, tokens/s). It draws on stderr so that stdout stays
 * machine-readable (the CLI prints one JSON object last), and it stays silent when stderr is not a
 * terminal unless HEALING_PROGRESS=1, so CI logs aren't flooded with redraws.
 */
export interface Progress {
  update(value: number, fields?: Record<string, string | number>): void;
  increment(delta?: number, fields?: Record<string, string | number>): void;
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Label in front of the bar, e.g. "fine-tune sst2". */
  label: string;
  total: number;
  /** Unit shown after the counts, e.g. "steps", "MB". */
  unit?: string;
  /** Extra fields rendered after the ETA, in this order. */
  fields?: string[];
  enabled?: boolean;
}

const silent: Progress = { update() {}, increment() {}, setTotal() {}, stop() {} };

export function progressEnabled(): boolean {
  if (process.env.HEALING_PROGRESS === '0') return false;
  return process.env.HEALING_PROGRESS === '1' || Boolean(process.stderr.isTTY);
}

export function createProgress(options: ProgressOptions): Progress {
  if (!(options.enabled ?? progressEnabled())) return silent;
  const extra = (options.fields ?? []).map((f) => `${f} {${f}}`).join(' | ');
  const bar = new cliProgress.SingleBar(
    {
      format: `${options.label} [{bar}] {value}/{total} ${options.unit ?? ''} | {rate}/s | ETA {eta_formatted}${extra ? ' | ' + extra : ''}`,
      stream: process.stderr,
      hideCursor: false,
      etaBuffer: 50,
      fps: 5,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  const initial = Object.fromEntries((options.fields ?? []).map((f) => [f, '-']));
  bar.start(options.total, 0, { ...initial, rate: '0' });
  const rate = (value: number): string => {
    const seconds = (Date.now() - start) / 1000;
    return seconds > 0 ? (value / seconds).toFixed(value / seconds >= 100 ? 0 : 2) : '0';
  };
  return {
    update(value, fields) {
      bar.update(value, { ...fields, rate: rate(value) });
    },
    increment(delta = 1, fields) {
      const value = bar.getProgress() * bar.getTotal() + delta;
      bar.update(value, { ...fields, rate: rate(value) });
    },
    setTotal(total) {
      bar.setTotal(total);
    },
    stop() {
      bar.stop();
    },
  };
}

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
  /** Where the bar draws (stderr unless a test captures it). */
  stream?: NodeJS.WritableStream;
}

/**
 * Units per second, per minute or per hour, whichever shows digits: a grid of 8-minute runs is "7.5/h", not "0.00/s".
 * "-" until the first unit is done, like the ETA: a rate of 0 for a whole first run reads as a stalled job.
 */
export function formatRate(done: number, elapsedSeconds: number): string {
  if (done <= 0 || elapsedSeconds <= 0) return '-';
  const perSecond = done / elapsedSeconds;
  if (perSecond >= 100) return `${perSecond.toFixed(0)}/s`;
  if (perSecond >= 0.1) return `${perSecond.toFixed(2)}/s`;
  if (perSecond * 60 >= 0.1) return `${(perSecond * 60).toFixed(2)}/min`;
  return `${(perSecond * 3600).toFixed(2)}/h`;
}

/**
 * Time left at the mean rate so far, as "1h 05m", "4m 10s" or "12s"; "-" before the first unit is done.
 * cli-progress's own ETA prints "NFs" while the rate is 0, which on a grid of 8-minute runs is the whole first run.
 */
export function formatEta(done: number, total: number, elapsedSeconds: number): string {
  if (done <= 0 || elapsedSeconds <= 0 || !Number.isFinite(total)) return '-';
  const left = Math.max(0, Math.round(((total - done) * elapsedSeconds) / done));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const sec = left % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

const silent: Progress = { update() {}, increment() {}, setTotal() {}, stop() {} };

export function progressEnabled(): boolean {
  if (process.env.HEALING_PROGRESS === '0') return false;
  return process.env.HEALING_PROGRESS === '1' || Boolean(process.stderr.isTTY);
}

export function createProgress(options: ProgressOptions): Progress {
  if (!(options.enabled ?? progressEnabled())) return silent;
  const extra = (options.fields ?? []).map((f) => `${f} {${f}}`).join(' | ');
  const stream = options.stream ?? process.stderr;
  const bar = new cliProgress.SingleBar(
    {
      format: `${options.label} [{bar}] {value}/{total} ${options.unit ?? ''} | {rate} | ETA {etaText}${extra ? ' | ' + extra : ''}`,
      stream,
      hideCursor: false,
      fps: 5,
      noTTYOutput: !(stream as { isTTY?: boolean }).isTTY,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  const initial = Object.fromEntries((options.fields ?? []).map((f) => [f, '-']));
  bar.start(options.total, 0, { ...initial, rate: '0/s', etaText: '-' });
  const timing = (value: number): { rate: string; etaText: string } => {
    const seconds = (Date.now() - start) / 1000;
    return { rate: formatRate(value, seconds), etaText: formatEta(value, bar.getTotal(), seconds) };
  };
  return {
    update(value, fields) {
      bar.update(value, { ...fields, ...timing(value) });
    },
    increment(delta = 1, fields) {
      const value = bar.getProgress() * bar.getTotal() + delta;
      bar.update(value, { ...fields, ...timing(value) });
    },
    setTotal(total) {
      bar.setTotal(total);
    },
    stop() {
      bar.stop();
    },
  };
}

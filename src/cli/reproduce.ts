import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, writeReport } from '../analysis/report';
import { SHIPPED_MODEL_NAMES } from '../io/models';
import { ensureResults, modelDepth } from '../analysis/study';
import { UserError } from '../errors';
import { prepareDatasets } from '../data/availability';
import { isPresetName, PRESET_FALLBACKS, PRESET_NAMES, presetSpecs } from '../experiment/presets';
import { datasetLabel } from '../experiment/spec';
import { DEFAULT_RESULTS_FILE } from '../experiment/store';
import { int, printJson } from './options';

interface ReproduceOptions {
  preset: string;
  model: string;
  results?: string;
  out?: string;
  workers?: string;
  datasets?: string;
  study: boolean;
}

/** The paper preset records into the project's store; others into their own file beside the report. */
export function reproducePaths(options: { preset: string; results?: string; out?: string }): { results: string; out: string } {
  const out = options.out ?? join('runs', options.preset);
  const results = options.results ?? (options.preset === 'paper' ? DEFAULT_RESULTS_FILE : join(out, 'results.jsonl'));
  return { results, out };
}

const say = (line: string) => process.stderr.write(`${line}\n`);

export function register(program: Command): void {
  program
    .command('reproduce')
    .description(
      'the main job: run a preset (default quick) through the grid, skipping runs already recorded, then write ' +
        'report.html and report.md (with PNG figures when Chromium is there) into --out',
    )
    .option('--preset <name>', `${PRESET_NAMES.join(' | ')}`, 'quick')
    .option('--model <model>', `a shipped model (${SHIPPED_MODEL_NAMES}), a checkpoint directory or a hub repo id`, 'default')
    .option('--results <file>', 'result store (default: data/results/results.jsonl for paper, <out>/results.jsonl otherwise)')
    .option('--out <dir>', 'where the reports go (default runs/<preset>/)')
    .option('--workers <n>', 'worker processes (default: number of cores)')
    .option('--datasets <a,b>', "only these datasets (instead of the preset's own list)")
    .option('--no-study', `do not also write <out>/study/report.html from the recorded paper-preset runs in ${DEFAULT_RESULTS_FILE}`)
    .action(async (options: ReproduceOptions) => {
      if (!isPresetName(options.preset)) throw new UserError(`--preset ${options.preset}: expected one of ${PRESET_NAMES.join(', ')}`);
      const workers = options.workers === undefined ? undefined : int(options.workers, '--workers', 1);
      const datasets = options.datasets?.split(',').map((s) => s.trim()).filter(Boolean);
      const { results, out } = reproducePaths(options);
      // A quick run shows the pipeline working; the findings stand on the recorded paper-preset runs, so
      // the main job reports those too (no computation: they are read from the store).
      const study = options.study && results !== DEFAULT_RESULTS_FILE && existsSync(DEFAULT_RESULTS_FILE);
      const steps = study ? 4 : 3;
      const started = Date.now();
      say(`[1/${steps}] ${options.preset} preset on model "${options.model}": reading its depth`);
      const planned = presetSpecs(options.preset, { model: options.model, numLayers: await modelDepth(options.model), datasets });
      // Fetched here, once, before any worker needs them. The preset's own datasets may fall back to an
      // embedded sample (logged); datasets the user named may not.
      const specs = await prepareDatasets(planned, { fallbacks: datasets ? undefined : PRESET_FALLBACKS[options.preset], log: say });
      const used = [...new Set(specs.map((s) => datasetLabel(s.dataset)))];
      say(`[1/${steps}] ${specs.length} experiment(s) on ${used.join(', ')}; results in ${results}`);
      // The grid's own progress bar (runs, rate, ETA, last accuracy) is the one to watch; on a
      // non-terminal we print a line per run instead.
      const tty = Boolean(process.stderr.isTTY) || process.env.HEALING_PROGRESS === '1';
      const outcome = await ensureResults(specs, {
        resultsFile: results,
        workers,
        runMissing: true,
        progress: tty ? true : undefined,
        log: tty ? (line) => (/^\[\d+\//.test(line) ? undefined : say(line)) : say,
      });
      if (outcome.failed > 0) say(`warning: ${outcome.failed} run(s) failed; the report covers the rest (rerun to retry them)`);
      say(`[2/${steps}] writing ${join(out, 'report.html')}`);
      const content = await buildReport({ resultsFile: results, model: options.model });
      const html = await writeReport(content, { out: join(out, 'report.html'), format: 'html' });
      say(`[3/${steps}] writing ${join(out, 'report.md')} and its figures`);
      const md = await writeReport(content, { out: join(out, 'report.md'), format: 'md' });
      for (const s of content.sections) say(`${s.finding.id} ${s.finding.verdict}: ${s.finding.summary}`);
      let studyOut: { html: string; markdown: string; verdicts: Record<string, string> } | undefined;
      if (study) {
        const dir = join(out, 'study');
        say(`[4/4] writing ${join(dir, 'report.html')} and report.md: the recorded paper-preset study in ${DEFAULT_RESULTS_FILE}`);
        const studyContent = await buildReport({ resultsFile: DEFAULT_RESULTS_FILE });
        const studyHtml = await writeReport(studyContent, { out: join(dir, 'report.html'), format: 'html' });
        const studyMd = await writeReport(studyContent, { out: join(dir, 'report.md'), format: 'md' });
        for (const s of studyContent.sections) say(`study ${s.finding.id} ${s.finding.verdict}: ${s.finding.summary}`);
        studyOut = { html: studyHtml.out, markdown: studyMd.out, verdicts: studyHtml.verdicts };
      }
      say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s: open ${html.out}`);
      printJson({
        preset: options.preset,
        model: options.model,
        datasets: used,
        results,
        ran: outcome.ran,
        recorded: outcome.recorded,
        failed: outcome.failed,
        html: html.out,
        markdown: md.out,
        figures: md.figures,
        verdicts: html.verdicts,
        ...(studyOut ? { study: studyOut } : {}),
      });
      if (outcome.missing.length > 0) throw new UserError(`${outcome.missing.length} run(s) are still missing; rerun the same command to retry them`);
    });
}

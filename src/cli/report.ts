import type { Command } from 'commander';
import { extname } from 'node:path';
import { buildReport, writeReport } from '../analysis/report';
import { UserError } from '../errors';
import { DEFAULT_RESULTS_FILE } from '../experiment/store';
import { printJson } from './options';

const FORMATS = ['html', 'md'] as const;
type Format = (typeof FORMATS)[number];

interface ReportOptions {
  results: string;
  out?: string;
  format?: string;
  model?: string;
  bagOfWords?: string;
}

/** --format wins; else the --out extension; else HTML. */
export function reportTarget(options: { out?: string; format?: string }): { out: string; format: Format } {
  if (options.format !== undefined && !(FORMATS as readonly string[]).includes(options.format)) {
    throw new UserError(`--format ${options.format}: expected one of ${FORMATS.join(', ')}`);
  }
  const fromExt = options.out && extname(options.out).toLowerCase() === '.md' ? 'md' : 'html';
  const format = (options.format as Format | undefined) ?? fromExt;
  return { out: options.out ?? (format === 'md' ? 'report.md' : 'report.html'), format };
}

export function register(program: Command): void {
  program
    .command('report')
    .description(
      'write the findings (F1 limits of healing, F2 more corruption hurts more, F3 bottom vs top) with figures, tables, ' +
        'computed verdicts, the setup and the provenance: a self-contained HTML page (interactive figures, no network ' +
        'needed) or Markdown with PNG figures (needs Chromium)',
    )
    .option('--results <file>', 'result store (JSONL)', DEFAULT_RESULTS_FILE)
    .option('--out <file>', 'output file (default report.html, or report.md with --format md)')
    .option('--format <format>', `${FORMATS.join(' | ')} (default: from the --out extension, else html)`)
    .option('--model <name>', 'analyse this model\'s runs (default: the model with the most runs)')
    .option('--bag-of-words <file>', 'bag-of-words rows (`healing baseline`) shown next to the clean model (default: bag-of-words.jsonl beside --results)')
    .action(async (options: ReportOptions) => {
      const { out, format } = reportTarget(options);
      const content = await buildReport({ resultsFile: options.results, model: options.model, bagOfWordsFile: options.bagOfWords });
      if (content.rowCount === 0) process.stderr.write(`warning: ${options.results} holds no results; the report says "not enough data"\n`);
      const written = await writeReport(content, { out, format });
      process.stderr.write(`wrote ${written.out}${written.figures && written.figures.length ? ` and ${written.figures.length} figure(s)` : ''}\n`);
      printJson(written);
    });
}

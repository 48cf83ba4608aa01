import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as dfd from 'danfojs-node';
import type { Figure } from './figures';
import { records } from './frames';

/**
 * Rich output in a tslab notebook: figures as plotly HTML, frames as HTML tables. plotly.js is
 * inlined once per kernel (the first figure) rather than loaded from a CDN, so notebooks render
 * offline and headless runs carry the library they were drawn with. Outside tslab (tsx, tests)
 * every function prints a one-line text summary instead, so library code can call them freely.
 */

const require = createRequire(import.meta.url);

interface TslabDisplay {
  html(s: string): void;
}

/** True inside a tslab kernel, which sets this global before running any cell. */
export function inNotebook(): boolean {
  return typeof (globalThis as { __tslab__?: unknown }).__tslab__ === 'object';
}

function tslabDisplay(): TslabDisplay {
  // Resolved lazily: loading tslab pulls in its TypeScript compiler, which plain scripts don't need.
  return (require('tslab') as { display: TslabDisplay }).display;
}

let plotlyInlined = false;
let figureCount = 0;

/** Path of the plotly.js bundle that is inlined here and loaded by the static exporter. */
export function plotlyBundlePath(): string {
  return require.resolve('plotly.js-dist');
}

/** Makes the next `show` inline plotly.js again (e.g. after reloading the notebook page with the kernel still running). */
export function resetDisplay(): void {
  plotlyInlined = false;
}

/** JSON safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

/** Text made safe inside HTML (for {@link showHtml}): & < > " escaped. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The HTML of one figure: a div and a Plotly.newPlot call. With `includePlotly` the bundle comes
 * first. Used by `show` and by the HTML report.
 */
export function figureHtml(figure: Figure, options: { id: string; includePlotly?: boolean; height?: number }): string {
  const id = escapeHtml(options.id);
  const height = options.height ?? 450;
  const bundle = options.includePlotly
    ? `<script type="text/javascript">${readFileSync(plotlyBundlePath(), 'utf8').replace(/<\/script/gi, '<\\/script')}</script>\n`
    : '';
  return `${bundle}<div id="${id}" style="width:100%;height:${height}px;"></div>
<script type="text/javascript">
(function () {
  var el = document.getElementById(${scriptJson(options.id)});
  var fig = ${scriptJson(figure)};
  if (window.Plotly) { window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true }); }
  else { el.textContent = 'plotly.js is not loaded in this page: run resetDisplay() and this cell again.'; }
})();
</script>`;
}

function figureTitle(figure: Figure): string {
  const title = figure.layout.title as { text?: string } | string | undefined;
  return typeof title === 'string' ? title : title?.text ?? 'figure';
}

/** What {@link show} draws: a plotly figure, or a table (a danfojs frame or plain records). */
export type Showable = Figure | dfd.DataFrame | ReadonlyArray<Record<string, unknown>>;

function isFigure(item: Showable): item is Figure {
  const candidate = item as Partial<Figure>;
  return !Array.isArray(item) && Array.isArray(candidate.data) && typeof candidate.layout === 'object' && candidate.layout !== null;
}

/**
 * Shows a figure (plotly.js is inlined on the first one of the kernel) or a table (a danfojs frame or
 * plain records, as {@link showTable}) in the notebook; outside tslab prints a one-line summary or the table.
 */
export function show(item: Showable, options: { height?: number; maxRows?: number } = {}): void {
  if (isFigure(item)) showFigure(item, options);
  else showTable(item, options);
}

/** Shows a figure in the notebook (inlining plotly.js on the first call of the kernel). */
export function showFigure(figure: Figure, options: { height?: number } = {}): void {
  if (!inNotebook()) {
    console.log(`[figure] ${figureTitle(figure)} (${figure.data.length} trace(s))`);
    return;
  }
  const html = figureHtml(figure, { id: `healing-fig-${process.pid}-${++figureCount}`, includePlotly: !plotlyInlined, height: options.height });
  tslabDisplay().html(html);
  plotlyInlined = true;
}

function formatCell(v: unknown): string {
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '';
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toFixed(4);
  }
  return v == null ? '' : String(v);
}

/** A frame (or plain records) as an HTML table; numbers to 4 decimals, NaN as blank. */
export function tableHtml(table: dfd.DataFrame | ReadonlyArray<Record<string, unknown>>, options: { maxRows?: number } = {}): string {
  const rows = Array.isArray(table) ? (table as Record<string, unknown>[]) : records<Record<string, unknown>>(table as dfd.DataFrame);
  const columns = Array.isArray(table) ? [...new Set(rows.flatMap((r) => Object.keys(r)))] : (table as dfd.DataFrame).columns;
  const maxRows = options.maxRows ?? 50;
  const shown = rows.slice(0, maxRows);
  const head = columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = shown.map((r) => `<tr>${columns.map((c) => `<td>${escapeHtml(formatCell(r[c]))}</td>`).join('')}</tr>`).join('\n');
  const more = rows.length > maxRows ? `<p>${rows.length - maxRows} more row(s) not shown</p>` : '';
  return `<table class="healing-table"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>${more}`;
}

/** Shows a table in the notebook; prints it as text elsewhere. */
export function showTable(table: dfd.DataFrame | ReadonlyArray<Record<string, unknown>>, options: { maxRows?: number } = {}): void {
  if (!inNotebook()) {
    const rows = Array.isArray(table) ? table : records(table as dfd.DataFrame);
    console.table(rows.slice(0, options.maxRows ?? 50));
    return;
  }
  tslabDisplay().html(tableHtml(table, options));
}

/** Shows markdown-free HTML text (a verdict, a note) in the notebook; prints the text elsewhere. */
export function showHtml(html: string): void {
  if (!inNotebook()) {
    console.log(html.replace(/<[^>]+>/g, ''));
    return;
  }
  tslabDisplay().html(html);
}

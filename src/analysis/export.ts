import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { plotlyBundlePath } from './display';
import type { Figure } from './figures';

/**
 * Static PNG/SVG export of figure specs through a headless Chromium driven by playwright-core:
 * plotly renders exactly as in the notebook, without a second rendering stack. One browser and one
 * page serve many figures (launch ~1 s, each figure ~0.1-0.2 s). Without a browser the export is
 * skipped with a notice, because figures are a convenience, not a result.
 */

export interface ExportOptions {
  format?: 'png' | 'svg';
  width?: number;
  height?: number;
  /** Pixel density for PNG (2 = sharp on slides). */
  scale?: number;
}

export interface FigureExporter {
  /** Renders one figure and writes it (atomically: temp file + rename). */
  export(figure: Figure, path: string, options?: ExportOptions): Promise<void>;
}

// Headless, no GPU, and no background traffic or profile sync: the browser only draws SVG.
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The browser to use: $HEALING_CHROMIUM, else the first Debian/Ubuntu/Chrome path that exists. */
export function findBrowser(): string | undefined {
  const env = process.env.HEALING_CHROMIUM;
  if (env) return existsSync(env) ? env : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

function writeAtomic(path: string, data: Buffer | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

async function preparePage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  await page.setContent('<!doctype html><html><body></body></html>');
  await page.addScriptTag({ path: plotlyBundlePath() });
  return page;
}

/**
 * Runs `fn` with an exporter backed by one browser, closed afterwards. Returns false (and prints a
 * notice on stderr) when no browser is installed.
 */
export async function withFigureExporter<T>(
  fn: (exporter: FigureExporter) => Promise<T>,
  options: { executablePath?: string } = {},
): Promise<T | false> {
  const executablePath = options.executablePath ?? findBrowser();
  if (!executablePath || !existsSync(executablePath)) {
    process.stderr.write(
      'figure export skipped: no Chromium found (apt-get install chromium, or set HEALING_CHROMIUM to a Chrome/Chromium binary)\n',
    );
    return false;
  }
  // playwright gives every launch a fresh temporary profile (user-data-dir) and removes it on close.
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS });
  try {
    const page = await preparePage(browser);
    const exporter: FigureExporter = {
      async export(figure, path, opts = {}) {
        const format = opts.format ?? (path.toLowerCase().endsWith('.svg') ? 'svg' : 'png');
        const url = await page.evaluate(
          ({ fig, format, width, height, scale }) =>
            (globalThis as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } }).Plotly.toImage(
              { data: fig.data, layout: fig.layout },
              { format, width, height, scale },
            ),
          { fig: figure, format, width: opts.width ?? 800, height: opts.height ?? 500, scale: opts.scale ?? 1 },
        );
        writeAtomic(path, decodeDataUrl(url));
      },
    };
    return await fn(exporter);
  } finally {
    await browser.close();
  }
}

/** Plotly returns PNG as base64 and SVG as a percent-encoded data URL. */
function decodeDataUrl(url: string): Buffer | string {
  const comma = url.indexOf(',');
  const meta = url.slice(0, comma);
  const payload = url.slice(comma + 1);
  return meta.endsWith(';base64') ? Buffer.from(payload, 'base64') : decodeURIComponent(payload);
}

/** Exports one figure (launching a browser for it); false when no browser is present. */
export async function exportFigure(figure: Figure, path: string, options: ExportOptions = {}): Promise<boolean> {
  const done = await withFigureExporter(async (exporter) => {
    await exporter.export(figure, path, options);
    return true;
  });
  return done === true;
}

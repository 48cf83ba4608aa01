import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { once } from 'node:events';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
// The node-only entry by its own path: resolvers that ignore package exports (the notebooks' tslab uses
// Node10 resolution) see only hyparquet's browser types, which lack asyncBufferFromFile.
import { asyncBufferFromFile } from 'hyparquet/src/node.js';
import { UserError } from '../errors';
import { downloadFile, hubEndpoint, type DownloadProgress, type HubOptions } from '../io/hub';
import { readInfo, type DatasetInfo } from './local';
import { datasetEntry, hubSource, type DatasetEntry, type HubSource } from './registry';

/**
 * Hub dataset files (parquet, or CSV for the one dataset published that way) to the local layout
 * <dataDir>/<name>/<split>.jsonl + info.json, the same shape as ../shared/data/datasets.
 *
 * Conversion rules: text = the registry's text column(s), joined with a space and trimmed (the GLUE text
 * of SST-2 carries a trailing space); rows labelled -1 (unlabelled, like SST-2's test split) and rows
 * with empty text are dropped and counted in info.json (`dropped`); a split with no labelled rows left
 * is skipped and not written.
 */

export type Row = Record<string, unknown>;

/** Rows of a parquet file as objects; only `columns` when given (they must exist). */
export async function readParquetRows(file: string, columns?: string[]): Promise<Row[]> {
  const buffer = await asyncBufferFromFile(file);
  let names: string[];
  try {
    const metadata = await parquetMetadataAsync(buffer);
    names = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (error) {
    throw new UserError(`${file}: not a readable parquet file (${(error as Error).message})`);
  }
  const missing = (columns ?? []).filter((c) => !names.includes(c));
  if (missing.length) throw new UserError(`${file}: no column ${missing.join(', ')}; columns: ${names.join(', ')}`);
  return parquetReadObjects({ file: buffer, columns });
}

/** The ClassLabel names the datasets library stores in a parquet file's "huggingface" metadata, if any. */
export async function parquetLabelNames(file: string, labelField: string): Promise<string[] | undefined> {
  const metadata = await parquetMetadataAsync(await asyncBufferFromFile(file));
  const hf = metadata.key_value_metadata?.find((kv) => kv.key === 'huggingface')?.value;
  if (!hf) return undefined;
  try {
    const names = JSON.parse(hf)?.info?.features?.[labelField]?.names;
    return Array.isArray(names) && names.every((n) => typeof n === 'string') ? names : undefined;
  } catch {
    return undefined;
  }
}

/**
 * RFC 4180 CSV with a header row: quoted fields may hold commas, doubled quotes and newlines; CRLF or
 * LF line ends. Values stay strings.
 */
export function parseCsv(text: string, file = 'CSV'): Row[] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endField = () => {
    record.push(field);
    field = '';
  };
  const endRecord = () => {
    endField();
    if (!(record.length === 1 && record[0] === '')) records.push(record);
    record = [];
  };
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') endField();
    else if (c === '\n') endRecord();
    else if (c === '\r' && text[i + 1] === '\n') {
      endRecord();
      i++;
    } else field += c;
  }
  if (quoted) throw new UserError(`${file}: a quoted field is not closed before the end of the file`);
  if (field !== '' || record.length) endRecord();
  const [header, ...body] = records;
  if (!header) throw new UserError(`${file}: empty CSV file`);
  return body.map((values, r) => {
    if (values.length !== header.length) {
      throw new UserError(`${file}: record ${r + 1} has ${values.length} fields, the header has ${header.length}`);
    }
    return Object.fromEntries(header.map((h, k) => [h, values[k]]));
  });
}

async function readRows(file: string, hub: HubSource): Promise<Row[]> {
  const columns = [...hub.textFields, hub.labelField];
  if (hub.format === 'parquet') return readParquetRows(file, columns);
  const rows = parseCsv(await readFile(file, 'utf8'), file);
  const missing = columns.filter((c) => rows.length > 0 && !(c in rows[0]));
  if (missing.length) throw new UserError(`${file}: no column ${missing.join(', ')}; columns: ${Object.keys(rows[0]).join(', ')}`);
  return rows;
}

function toLabel(value: unknown): number | undefined {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

export interface SplitSummary {
  split: string;
  rows: number;
  labelCounts: Record<string, number>;
  dropped: { unlabelled: number; emptyText: number };
  /** True when no labelled rows were left and nothing was written. */
  skipped: boolean;
  file?: string;
}

export interface ConvertOptions {
  /** Recorded in info.json's source. */
  origin?: string;
}

/**
 * Converts downloaded hub files of one split into <destDir>/<name>/<split>.jsonl and records the split in
 * info.json (other splits already there are kept). Both files are written to a temporary name and
 * renamed, so an interrupted run never leaves a half-written split that looks complete.
 */
export async function convertToLocal(
  name: string,
  split: string,
  files: string[],
  destDir: string,
  options: ConvertOptions = {},
): Promise<SplitSummary> {
  const entry = datasetEntry(name);
  const hub = hubSource(entry);
  const numLabels = entry.labelNames.length;
  const folder = join(destDir, entry.name);
  await mkdir(folder, { recursive: true });
  const target = join(folder, `${split}.jsonl`);
  const tmp = `${target}.${process.pid}.tmp`;
  const out = createWriteStream(tmp, { encoding: 'utf8' });
  const labelCounts: Record<string, number> = Object.fromEntries(entry.labelNames.map((_, i) => [String(i), 0]));
  const dropped = { unlabelled: 0, emptyText: 0 };
  let rows = 0;
  try {
    for (const file of files) {
      if (hub.format === 'parquet') {
        const hubNames = await parquetLabelNames(file, hub.labelField);
        if (hubNames && hubNames.join('\n') !== entry.labelNames.join('\n')) {
          throw new UserError(
            `${file}: the hub's label names (${hubNames.join(', ')}) differ from the registry's for ${name} (${entry.labelNames.join(', ')})`,
          );
        }
      }
      const records = await readRows(file, hub);
      let buffered = '';
      for (let r = 0; r < records.length; r++) {
        const record = records[r];
        const label = toLabel(record[hub.labelField]);
        if (label === -1) {
          dropped.unlabelled++;
          continue;
        }
        if (label === undefined || !Number.isInteger(label) || label < 0 || label >= numLabels) {
          throw new UserError(
            `${file}: row ${r + 1}: label ${String(record[hub.labelField])} is not a class id 0..${numLabels - 1} of ${name}`,
          );
        }
        const text = hub.textFields
          .map((f) => (record[f] === null || record[f] === undefined ? '' : String(record[f]).trim()))
          .filter((t) => t !== '')
          .join(' ');
        if (text === '') {
          dropped.emptyText++;
          continue;
        }
        // The same line shape as the shared files (Python's json.dumps with ensure_ascii=False).
        buffered += `{"text": ${JSON.stringify(text)}, "label": ${label}}\n`;
        labelCounts[String(label)]++;
        rows++;
        if (buffered.length > 1 << 20) {
          if (!out.write(buffered)) await once(out, 'drain');
          buffered = '';
        }
      }
      if (!out.write(buffered)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  } catch (error) {
    out.destroy();
    await rm(tmp, { force: true });
    throw error;
  }
  if (rows === 0) {
    await rm(tmp, { force: true });
    return { split, rows, labelCounts, dropped, skipped: true };
  }
  await rename(tmp, target);
  await recordSplit(folder, entry, split, { rows, label_counts: labelCounts, dropped }, options.origin);
  return { split, rows, labelCounts, dropped, skipped: false, file: target };
}

async function recordSplit(
  folder: string,
  entry: DatasetEntry,
  split: string,
  splitInfo: DatasetInfo['splits'][string],
  origin?: string,
): Promise<void> {
  const file = join(folder, 'info.json');
  let info: DatasetInfo;
  try {
    info = await readInfo(file);
  } catch {
    info = { name: entry.name, label_names: entry.labelNames, splits: {} };
  }
  info = {
    ...info,
    name: entry.name,
    hub_id: entry.hubId,
    task: entry.task,
    label_names: entry.labelNames,
    splits: { ...info.splits, [split]: splitInfo },
    ...(origin ? { source: origin } : {}),
    ...(entry.notes ? { notes: entry.notes } : {}),
  };
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(info, null, 2)}\n`);
  await rename(tmp, file);
}

export interface DownloadDatasetOptions extends HubOptions {
  dataDir: string;
  revision?: string;
  /** Only these splits (default: every labelled split the registry lists). */
  splits?: string[];
  onProgress?: (progress: DownloadProgress) => void;
}

export interface DatasetSummary {
  name: string;
  hubId: string;
  folder: string;
  splits: SplitSummary[];
}

/** Fetches a registry dataset's hub files (cached like models) and writes the local layout. */
export async function downloadDataset(name: string, options: DownloadDatasetOptions): Promise<DatasetSummary> {
  const entry = datasetEntry(name);
  const hub = hubSource(entry);
  const revision = options.revision ?? 'main';
  const splits = options.splits ?? Object.keys(hub.files);
  for (const split of splits) {
    if (!hub.files[split]) throw new UserError(`dataset ${name} has no labelled split ${split}; splits: ${Object.keys(hub.files).join(', ')}`);
  }
  const summaries: SplitSummary[] = [];
  for (const split of splits) {
    const local: string[] = [];
    for (const filename of hub.files[split]) {
      local.push(
        await downloadFile({ ...options, repoId: entry.hubId, repoType: 'dataset', revision, filename }),
      );
    }
    const origin = `${options.endpoint ?? hubEndpoint()}/datasets/${entry.hubId} revision ${revision}: ${Object.entries(hub.files)
      .map(([s, f]) => `${s} = ${f.map((p) => basename(p)).join(' + ')}`)
      .join('; ')}`;
    summaries.push(await convertToLocal(name, split, local, options.dataDir, { origin }));
  }
  return { name: entry.name, hubId: entry.hubId, folder: join(options.dataDir, entry.name), splits: summaries };
}

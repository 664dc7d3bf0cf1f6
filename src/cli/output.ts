// The one place results become text. Formats follow the Azure CLI's: json (keys sorted, 2-space
// indent), jsonc (json, coloured), yaml, table (per-command columns, or a generic flattening of
// top-level scalars), tsv (values only, tab-separated, one line per item), none.

import jmespath from 'jmespath';
import YAML from 'yaml';

export const OUTPUT_FORMATS = ['json', 'jsonc', 'table', 'tsv', 'yaml', 'none'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A column of a command's own table: header text and how to read the cell from one item. */
export interface TableColumn {
  header: string;
  value: (item: Record<string, unknown>) => unknown;
}

/** A command's own table: its columns, and (when the result is not the list of rows) where the rows are. */
export interface TableSpec {
  columns: TableColumn[];
  rows?: (data: unknown) => unknown[];
}

export interface FormatOptions {
  format: OutputFormat;
  /** A JMESPath expression applied to the result before formatting. */
  query?: string;
  /** The table for `-o table` when no `--query` reshaped the result (az drops transformers then, too). */
  table?: TableSpec;
  /** Colour jsonc; on unless NO_COLOR is set. */
  color?: boolean;
}

/** Thrown for a `--query` that is not valid JMESPath. */
export class QueryError extends Error {}

// `compile` exists at runtime (jmespath.js exports its parser) but @types/jmespath omits it.
const parser = jmespath as unknown as { compile?: (expression: string) => unknown };

/** Checks that `expression` parses as JMESPath (syntax only); throws `QueryError` otherwise. */
export function validateQuery(expression: string): void {
  try {
    if (parser.compile) parser.compile(expression);
    else jmespath.search(null, expression);
  } catch (error) {
    throw new QueryError(`invalid JMESPath query '${expression}': ${(error as Error).message}`);
  }
}

/** Applies `--query`, if any. */
export function applyQuery(data: unknown, query: string | undefined): unknown {
  if (query === undefined) return data;
  try {
    return jmespath.search(data, query) as unknown;
  } catch (error) {
    throw new QueryError(`cannot evaluate query '${query}': ${(error as Error).message}`);
  }
}

/** Formats a command's result; returns the text to write to stdout ('' for nothing). */
export function formatOutput(data: unknown, options: FormatOptions): string {
  const result = applyQuery(data, options.query);
  if (result === undefined || result === null || options.format === 'none') return '';
  const keepOrder = options.query !== undefined;
  switch (options.format) {
    case 'json':
      return `${JSON.stringify(sortKeysDeep(result), null, 2)}\n`;
    case 'jsonc':
      return `${colorJson(sortKeysDeep(result), options.color ?? true)}\n`;
    case 'yaml':
      return YAML.stringify(sortKeysDeep(result), { lineWidth: 0 });
    case 'tsv':
      return formatTsv(result, keepOrder);
    case 'table':
      if (options.table && !keepOrder) {
        return formatTable(options.table.rows ? options.table.rows(result) : result, options.table.columns);
      }
      return formatTable(result, undefined, keepOrder);
  }
}

/** `-o tsv`: one line per item, scalar values tab-separated; nested objects/arrays are empty cells. */
export function formatTsv(data: unknown, keepOrder = false): string {
  const rows = Array.isArray(data) ? data : [data];
  return rows.map((row) => `${tsvRow(row, keepOrder)}\n`).join('');
}

function tsvRow(row: unknown, keepOrder: boolean): string {
  if (Array.isArray(row)) return row.map(tsvCell).join('\t');
  if (isPlainObject(row)) return orderedValues(row, keepOrder).map(tsvCell).join('\t');
  return tsvCell(row);
}

function tsvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return '';
  return String(value);
}

/**
 * `-o table`: with `columns`, one column each; otherwise the top-level scalars of each item become
 * columns (headers capitalised, `id`/`type` skipped, as az does); a list of scalars gets `Result`.
 */
export function formatTable(data: unknown, columns?: TableColumn[], keepOrder = false): string {
  const items = Array.isArray(data) ? data : [data];
  if (items.length === 0) return '';
  let headers: string[];
  let rows: string[][];
  if (columns) {
    headers = columns.map((c) => c.header);
    rows = items.map((item) => columns.map((c) => tableCell(c.value(isPlainObject(item) ? item : {}))));
  } else if (items.every((item) => !isPlainObject(item))) {
    headers = ['Result'];
    rows = items.map((item) => [tableCell(Array.isArray(item) ? item.map(tableCell).join(', ') : item)]);
  } else {
    headers = [];
    const seen = new Set<string>();
    for (const item of items) {
      if (!isPlainObject(item)) continue;
      for (const key of keepOrder ? Object.keys(item) : Object.keys(item).sort()) {
        const value = item[key];
        if (SKIPPED_TABLE_KEYS.has(key) || (value !== null && typeof value === 'object')) continue;
        if (!seen.has(key)) {
          seen.add(key);
          headers.push(key);
        }
      }
    }
    rows = items.map((item) => headers.map((key) => tableCell(isPlainObject(item) ? item[key] : undefined)));
    headers = headers.map((key) => key.charAt(0).toUpperCase() + key.slice(1));
  }
  if (headers.length === 0) return '';
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)]
    .map((l) => `${l}\n`)
    .join('');
}

const SKIPPED_TABLE_KEYS = new Set(['id', 'type', 'etag']);

function tableCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value).replace(/[\r\n\t]+/g, ' ');
}

function orderedValues(row: Record<string, unknown>, keepOrder: boolean): unknown[] {
  const keys = keepOrder ? Object.keys(row) : Object.keys(row).sort();
  return keys.map((key) => row[key]);
}

/** A copy of `value` whose objects have their keys in sorted order (az's JSON and YAML do this). */
export function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (!isPlainObject(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeysDeep(value[key]);
  return sorted;
}

const COLORS = {
  key: '\x1b[94m',
  string: '\x1b[32m',
  literal: '\x1b[33m',
  null: '\x1b[90m',
  reset: '\x1b[0m',
};

function colorJson(value: unknown, color: boolean, indent = ''): string {
  if (!color) return JSON.stringify(value, null, 2).replace(/^/gm, indent).slice(indent.length);
  const paint = (code: string, text: string) => `${code}${text}${COLORS.reset}`;
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + colorJson(v, color, inner)).join(',\n')}\n${indent}]`;
  }
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) return '{}';
    const entries = keys.map(
      (key) => `${inner}${paint(COLORS.key, JSON.stringify(key))}: ${colorJson(value[key], color, inner)}`,
    );
    return `{\n${entries.join(',\n')}\n${indent}}`;
  }
  if (value === null) return paint(COLORS.null, 'null');
  if (typeof value === 'string') return paint(COLORS.string, JSON.stringify(value));
  return paint(COLORS.literal, JSON.stringify(value));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

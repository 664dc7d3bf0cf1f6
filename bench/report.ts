import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** What a metric must reach: a ratio Berth/distribution, an absolute ceiling, or a text from elsewhere. */
export type Goal =
  | { kind: 'ratio-at-least'; value: number }
  | { kind: 'below'; value: number }
  | { kind: 'at-least'; value: number }
  | { kind: 'text'; text: string };

/** One line of the results table. */
export interface Row {
  metric: string;
  unit: string;
  berth?: number | undefined;
  distribution?: number | undefined;
  goal?: Goal | undefined;
  /**
   * Which way is better, when a ratio makes sense: the ratio is then how many times better Berth is
   * (Berth ÷ distribution for throughput, distribution ÷ Berth for cost).
   */
  better?: 'higher' | 'lower';
}

/** A row with the ratio and verdict filled in. */
export interface EvaluatedRow extends Row {
  ratio?: number | undefined;
  target: string;
  met: boolean | undefined;
}

/** Computes ratios and whether each goal is met (undefined when it cannot be told). */
export function evaluate(rows: Row[]): EvaluatedRow[] {
  return rows.map((row) => {
    const { berth, distribution } = row;
    const ratio =
      berth === undefined || distribution === undefined || berth <= 0 || distribution <= 0
        ? undefined
        : row.better === 'higher'
          ? berth / distribution
          : row.better === 'lower'
            ? distribution / berth
            : undefined;
    const goal = row.goal;
    if (!goal) return { ...row, ratio, target: '', met: undefined };
    switch (goal.kind) {
      case 'ratio-at-least':
        return {
          ...row,
          ratio,
          target: `≥ ${goal.value}×`,
          met: ratio === undefined ? undefined : ratio >= goal.value,
        };
      case 'below':
        return {
          ...row,
          ratio,
          target: `< ${goal.value} ${row.unit}`,
          met: row.berth === undefined ? undefined : row.berth < goal.value,
        };
      case 'at-least':
        return {
          ...row,
          ratio,
          target: `≥ ${goal.value} ${row.unit}`,
          met: row.berth === undefined ? undefined : row.berth >= goal.value,
        };
      case 'text':
        return { ...row, ratio, target: goal.text, met: undefined };
    }
  });
}

/** The table as text, one line per row, columns padded. */
export function formatTable(rows: EvaluatedRow[]): string {
  const header = ['metric', 'Berth', 'distribution', 'ratio', 'target', 'met'];
  const lines = rows.map((row) => [
    row.metric,
    formatValue(row.berth, row.unit),
    formatValue(row.distribution, row.unit),
    row.ratio === undefined ? '—' : `${row.ratio.toFixed(2)}×`,
    row.target || '—',
    row.met === undefined ? (row.target ? 'n/a' : '—') : row.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => line[column]!.length)),
  );
  const render = (cells: string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ');
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)].join('\n');
}

/** Writes the results (and whatever raw detail the caller adds) as JSON. */
export function writeResults(path: string, content: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(content, null, 2)}\n`);
}

function formatValue(value: number | undefined, unit: string): string {
  if (value === undefined) return '—';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

#!/usr/bin/env node
// Runs every *.test.ts under test/ (or the folders/files given) with Node's own test runner and tsx.
// Node 20's --test does not expand globs or pick up .ts files itself, so we list them here.
//
// A TAP copy of the report goes to a temporary file; at the end every skipped test is named with its
// reason. With BERTH_REQUIRE_E2E=1 (CI), a skipped test is a failure: the spec report goes to stdout
// (with the runner's closing summary) and the TAP copy's `# skipped N` line decides. Missing client
// tools already fail under that variable; this also catches `test.skip` and `{ skip }` options, so
// nothing can quietly stop running.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path).sort()) collect(join(path, entry), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

const requireAll = process.env.BERTH_REQUIRE_E2E === '1';
// A TAP copy of the report lets us name skipped tests at the end (and fail on them under
// BERTH_REQUIRE_E2E). Left out when the caller chose reporters, which must pair with destinations.
const ownReporters = flags.some((f) => f.startsWith('--test-reporter'));
const tapDir = requireAll || !ownReporters ? mkdtempSync(join(tmpdir(), 'berth-tests-')) : undefined;
const tapFile = tapDir && join(tapDir, 'report.tap');
// Node picks spec on a terminal and TAP otherwise; naming a reporter turns that off, so do it here.
const stdoutReporter = requireAll || process.stdout.isTTY ? 'spec' : 'tap';
const reporters = tapFile
  ? [
      ...(ownReporters ? [] : [`--test-reporter=${stdoutReporter}`, '--test-reporter-destination=stdout']),
      '--test-reporter=tap',
      `--test-reporter-destination=${tapFile}`,
    ]
  : [];

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', ...flags, ...reporters, ...files],
  { stdio: 'inherit' },
);
let status = result.status ?? 1;

if (tapFile) {
  const verdict = checkSkipped(tapFile, requireAll);
  if (requireAll) status = Math.max(status, verdict);
  rmSync(tapDir, { recursive: true, force: true });
}
process.exit(status);

/**
 * Reads the TAP report and names every skipped test with its reason. Returns 1 when, with `strict`
 * (BERTH_REQUIRE_E2E=1), a test was skipped, none ran, or the report is incomplete; else 0.
 */
function checkSkipped(file, strict) {
  let tap;
  try {
    tap = readFileSync(file, 'utf8');
  } catch {
    console.error('run-tests: no TAP report was written; cannot tell whether tests were skipped');
    return 1;
  }
  const count = (name) => {
    const match = new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap);
    return match ? Number(match[1]) : undefined;
  };
  const tests = count('tests');
  const skipped = count('skipped');
  if (tests === undefined || skipped === undefined) {
    console.error('run-tests: the TAP report has no closing summary; the test run did not finish');
    return 1;
  }
  if (tests === 0) {
    console.error('run-tests: no test ran');
    return 1;
  }
  if (skipped > 0) {
    const names = tap
      .split('\n')
      .filter((line) => /^\s*ok \d+ - .* # SKIP\b/.test(line))
      .map((line) => `  ${line.trim().replace(/^ok \d+ - /, '')}`);
    console.error(
      strict
        ? `run-tests: ${skipped} test(s) skipped, and BERTH_REQUIRE_E2E=1 requires every test to run:`
        : `run-tests: ${skipped} test(s) skipped (set BERTH_REQUIRE_E2E=1 to make that a failure):`,
    );
    for (const name of names) console.error(name);
    return 1;
  }
  // Nothing printed on success, so the runner's own summary stays the last lines of the output.
  return 0;
}

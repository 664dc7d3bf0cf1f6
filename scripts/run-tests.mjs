#!/usr/bin/env node
// Runs every *.test.ts under test/ (or the folders/files given) with Node's own test runner and tsx.
// Node 20's --test does not expand globs or pick up .ts files itself, so we list them here.
//
// With BERTH_REQUIRE_E2E=1 (CI), a skipped test is a failure: the spec report goes to stdout as usual
// (with the runner's closing summary), a TAP copy goes to a temporary file, and its `# skipped N` line
// decides. Missing client tools already fail under that variable; this also catches `test.skip` and
// `{ skip }` options, so nothing can quietly stop running.
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
const tapDir = requireAll ? mkdtempSync(join(tmpdir(), 'berth-tests-')) : undefined;
const tapFile = tapDir && join(tapDir, 'report.tap');
const reporters = tapFile
  ? [
      ...(flags.some((f) => f.startsWith('--test-reporter'))
        ? []
        : ['--test-reporter=spec', '--test-reporter-destination=stdout']),
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
  status = Math.max(status, checkNothingSkipped(tapFile));
  rmSync(tapDir, { recursive: true, force: true });
}
process.exit(status);

/** Exit status from the TAP report: 1 when a test was skipped, none ran, or the report is incomplete. */
function checkNothingSkipped(file) {
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
      `run-tests: ${skipped} test(s) skipped, and BERTH_REQUIRE_E2E=1 requires every test to run:`,
    );
    for (const name of names) console.error(name);
    return 1;
  }
  console.error(`run-tests: no test was skipped (BERTH_REQUIRE_E2E=1, ${tests} tests)`);
  return 0;
}

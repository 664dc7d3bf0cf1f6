#!/usr/bin/env node
// The `berth` executable: wires the real process into `run` and exits with its code.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { processIO } from './io.js';
import { run } from './program.js';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'dev';
  } catch {
    return 'dev';
  }
}

const exitCode = await run(process.argv.slice(2), {
  io: processIO(),
  env: process.env,
  homeDir: homedir(),
  version: packageVersion(),
});
process.exitCode = exitCode;

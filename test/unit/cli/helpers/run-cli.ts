// Runs the CLI in-process with captured stdout/stderr and a private config directory.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CliDeps } from '../../../../src/cli/context.js';
import { run } from '../../../../src/cli/program.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliHarness {
  configDir: string;
  env: Record<string, string | undefined>;
  /** Answers for interactive prompts, in order; undefined means stdin is not a terminal. */
  answers?: string[];
  stdin?: string;
  probe?: CliDeps['probe'];
  run(...argv: string[]): Promise<CliResult>;
}

/** A harness whose env points BERTH_CONFIG_DIR at a fresh temp dir (never the real home). */
export function cliHarness(env: Record<string, string | undefined> = {}): CliHarness {
  const configDir = mkdtempSync(join(tmpdir(), 'berth-cli-unit-'));
  const harness: CliHarness = {
    configDir,
    env: { BERTH_CONFIG_DIR: configDir, NO_COLOR: '1', ...env },
    async run(...argv) {
      let stdout = '';
      let stderr = '';
      const answers = harness.answers ? [...harness.answers] : undefined;
      const code = await run(argv, {
        io: {
          stdout: (text) => void (stdout += text),
          stderr: (text) => void (stderr += text),
          interactive: answers !== undefined,
          prompt: async (question) => {
            stderr += question;
            return answers?.shift() ?? '';
          },
          readStdin: async () => harness.stdin ?? '',
        },
        env: harness.env,
        homeDir: join(configDir, 'home'),
        ...(harness.probe ? { probe: harness.probe } : {}),
        version: '0.0.0-test',
      });
      return { code, stdout, stderr };
    },
  };
  return harness;
}

import { createInterface } from 'node:readline';
import type { CliIO } from './context.js';

/** The real terminal: process streams, prompts on stderr so stdout stays clean for results. */
export function processIO(): CliIO {
  // `berth list | head -1` closes the pipe early; that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    interactive: process.stdin.isTTY === true,
    prompt: (question, options) => prompt(question, options?.hidden === true),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

function prompt(question: string, hidden: boolean): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    // Echo nothing after the question; readline calls _writeToOutput for every keystroke.
    const internals = rl as unknown as { _writeToOutput: (text: string) => void; output: NodeJS.WriteStream };
    internals._writeToOutput = (text: string) => {
      if (text.startsWith(question)) internals.output.write(question);
    };
  }
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      if (hidden) process.stderr.write('\n');
      rl.close();
      resolve(answer);
    });
  });
}

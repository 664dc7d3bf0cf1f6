// Named points inside a commit where the crash-recovery tests kill the process (`kill -9` of itself),
// to prove that a crash at any of them leaves nothing a restart does not heal. The variable is read
// once; without it (always, outside those tests) a crash point does nothing.

const crashAt = process.env.BERTH_TEST_CRASH_AT;

/** Where a commit can be interrupted, in order. */
export type CrashPoint = 'after-mark' | 'after-rename' | 'after-link';

/** Kills the process on the spot when BERTH_TEST_CRASH_AT names this point (tests only). */
export function crashPoint(point: CrashPoint): void {
  if (crashAt === point) process.kill(process.pid, 'SIGKILL');
}

import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports process CPU times in clock ticks; USER_HZ is 100 on every mainstream architecture. */
const TICKS_PER_SECOND = 100;

/** VmRSS and VmHWM (peak) of a process, in MiB, from `/proc/<pid>/status`. */
export function readMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) / 1024;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/**
 * User + system CPU seconds a process (all its threads) has used, from `/proc/<pid>/stat`; undefined
 * when it cannot be read. Unlike wall time, this barely moves when other work shares the machine.
 */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds the live threads of a process have run, in nanosecond resolution (the sum of
 * `/proc/<pid>/task/<tid>/schedstat`); falls back to `cpuSeconds` (10 ms ticks) when unavailable.
 * Over short spans (a 256 MiB pull costs ~100 ms of CPU) the ticks alone would be ±10%.
 */
export function preciseCpuSeconds(pid: number): number | undefined {
  try {
    let nanoseconds = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        nanoseconds += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended while being read
      }
    }
    return nanoseconds / 1e9;
  } catch {
    return cpuSeconds(pid);
  }
}

/**
 * CPU time read from /proc (Linux), for the benchmarks that split a run's CPU between the served process,
 * the PostgreSQL backends serving the bench database, and the bench process.
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS = 100; // USER_HZ on Linux x86-64

/** User + system CPU ms of a process so far (0 once it has ended). */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** PostgreSQL backends serving `database`, by pid → CPU ms so far. */
export function backendCpu(database: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.startsWith('postgres: ') && cmd.includes(` ${database} `))
        out.set(Number(entry), processCpuMs(Number(entry)));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

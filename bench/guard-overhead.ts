import { randomBytes } from 'node:crypto';
import { manifestLoad, pushSmallImage, type LoadResult } from './manifest.js';
import type { Target } from './targets.js';

/** Manifest GET throughput with the network guard deciding against 100 IP rules, and with none. */
export interface GuardOverhead {
  rulesOff: LoadResult[];
  rulesOn: LoadResult[];
}

/** 99 random public IPv4/IPv6 rules plus the loopback address the load comes from: 100 in all. */
function hundredRules(): { action: 'Allow'; value: string }[] {
  const values = new Set<string>(['127.0.0.1']);
  while (values.size < 100) {
    const b = randomBytes(8);
    values.add(
      values.size % 2 === 0
        ? `${(b[0]! % 200) + 11}.${b[1]}.${b[2]}.0/24`
        : `2001:db8:${b.readUInt16BE(2).toString(16)}:${b.readUInt16BE(4).toString(16)}::/64`,
    );
  }
  return [...values].map((value) => ({ action: 'Allow', value }));
}

async function setRules(target: Target, networkRuleSet: unknown): Promise<void> {
  const management = target.management;
  if (!management) throw new Error('the guard bench needs Berth with its management API');
  const response = await fetch(`${management.url}/api/registries/default`, {
    method: 'PATCH',
    headers: { authorization: management.authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ properties: { networkRuleSet } }),
  });
  if (response.status !== 200)
    throw new Error(`setting network rules: ${response.status} ${await response.text()}`);
}

/**
 * Alternates runs without rules (default action Allow) and with Deny + 100 rules, on one Berth, so
 * drift on a shared machine affects both sides alike. The guard runs on every request in both cases;
 * the difference is the cost of matching against the rule set.
 */
export async function guardOverhead(
  berth: Target,
  runs: number,
  load: { connections: number; seconds: number; warmupSeconds: number },
  progress: (message: string) => void,
): Promise<GuardOverhead> {
  await pushSmallImage(berth, 'bench/guarded', 'v1');
  const result: GuardOverhead = { rulesOff: [], rulesOn: [] };
  const rules = hundredRules();
  try {
    for (let run = 0; run < runs; run++) {
      await setRules(berth, { defaultAction: 'Allow', ipRules: [] });
      result.rulesOff.push(await manifestLoad(berth, 'bench/guarded', 'v1', load));
      await setRules(berth, { defaultAction: 'Deny', ipRules: rules });
      result.rulesOn.push(await manifestLoad(berth, 'bench/guarded', 'v1', load));
      progress(
        `guard run ${run + 1}: ${result.rulesOff.at(-1)!.requestsPerSecond.toFixed(0)} req/s without rules, ` +
          `${result.rulesOn.at(-1)!.requestsPerSecond.toFixed(0)} req/s with 100 rules`,
      );
    }
  } finally {
    await setRules(berth, { defaultAction: 'Allow', ipRules: [] });
  }
  return result;
}

/** How much slower (in %) the best run with rules is than the best without; negative means faster. */
export function slowdownPercent(overhead: GuardOverhead): number {
  const best = (runs: LoadResult[]) => Math.max(...runs.map((r) => r.requestsPerSecond));
  return (1 - best(overhead.rulesOn) / best(overhead.rulesOff)) * 100;
}

/** The same comparison on server CPU per request (steadier than wall time on a shared machine). */
export function cpuOverheadPercent(overhead: GuardOverhead): number | undefined {
  const median = (runs: LoadResult[]) => {
    const values = runs.map((r) => r.serverCpuUsPerRequest).filter((v): v is number => v !== undefined);
    values.sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)];
  };
  const off = median(overhead.rulesOff);
  const on = median(overhead.rulesOn);
  return off === undefined || on === undefined ? undefined : (on / off - 1) * 100;
}

// End-to-end latency of adding one IP rule to a registry that already has 100 / 10,000 / 100,000:
// the atomic add over HTTP, then the first data-plane request, which sees the new rule (the guard
// recompiles the registry's policy on the change). Run in-process against a real server on loopback.

import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { DEFAULT_CONFIG, type BerthConfig } from '../src/config.js';
import { DEFAULT_SKU_PLANS } from '../src/management/skus.js';
import { startBerth } from '../src/server.js';
import type { BenchResult } from './network-decision.js';

const PASSWORD = 'bench-admin-password';
const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;

function call(url: string, method: string, path: string, body?: unknown, from?: string): Promise<number> {
  const target = new URL(url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        method,
        path,
        ...(from ? { localAddress: from } : {}),
        headers: {
          Authorization: AUTH,
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const ruleFor = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

/** Milliseconds (median of `runs`) to add one rule to a registry with `count` rules, end to end. */
export async function addLatency(count: number, runs: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-bench-rules-'));
  const config: BerthConfig = {
    ...structuredClone(DEFAULT_CONFIG),
    listen: ['127.0.0.1:0'],
    managementListen: '127.0.0.1:0',
    logLevel: 'silent',
    adminPassword: PASSWORD,
    dataDir,
    skus: { ...DEFAULT_SKU_PLANS, Premium: { ...DEFAULT_SKU_PLANS.Premium, maxIpRules: 1_000_000 } },
  };
  const berth = await startBerth(config, pino({ level: 'silent' }));
  try {
    const api = berth.managementUrl;
    await call(api, 'PATCH', '/api/registries/default', {
      properties: { networkRuleSet: { defaultAction: 'Deny', ipRules: [{ value: '127.0.0.1' }] } },
    });
    for (let start = 0; start < count; start += 10_000) {
      const ipRules = Array.from({ length: Math.min(10_000, count - start) }, (_, i) => ({
        value: ruleFor(start + i),
      }));
      await call(api, 'POST', '/api/registries/default/networkRuleSet/ipRules', { ipRules });
    }
    await call(berth.urls[0]!, 'GET', '/v2/'); // compile once before measuring
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = process.hrtime.bigint();
      const added = await call(api, 'POST', '/api/registries/default/networkRuleSet/ipRules', {
        ipRules: [{ value: `127.0.${run + 1}.2` }],
      });
      const seen = await call(berth.urls[0]!, 'GET', '/v2/', undefined, `127.0.${run + 1}.2`);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      if (added !== 200 || seen !== 200) throw new Error(`add ${added}, then GET ${seen}`);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)]!;
  } finally {
    await berth.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Rule-add latency rows at 100 / 10,000 / 100,000 rules (target < 50 ms at 10,000). */
export async function benchRuleEdits(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const count of [100, 10_000, 100_000]) {
    results.push({
      name: `add 1 IP rule to ${count.toLocaleString('en-US')} rules, until the data plane sees it`,
      value: Math.round((await addLatency(count, 9)) * 10) / 10,
      unit: 'ms',
      ...(count === 10_000 ? { target: '< 50' } : {}),
    });
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await benchRuleEdits()) {
    console.log(`${r.name}: ${r.value} ${r.unit}${r.target ? ` (target ${r.target})` : ''}`);
  }
}

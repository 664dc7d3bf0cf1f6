// What sign-in costs: manifest GET with a Bearer token on every request against the same GET
// anonymously (anonymous pull on, so no credential is checked at all), the same with the JWT of a
// token limited to address ranges (its current ranges looked up per request, from a cache), and token
// issuance with a credential the verifier has cached.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { authorizationFor, expectStatus, send } from './http.js';
import { load, manifestLoad, pushSmallImage, type LoadResult } from './manifest.js';
import { startBerthProcess, type Target } from './targets.js';

/** Both sides of the comparison, run alternately, and the token endpoint's throughput. */
export interface SignInCost {
  anonymous: LoadResult[];
  bearer: LoadResult[];
  /** Bearer JWT of a repository-scoped token with `allowedIpRanges`. */
  limitedBearer: LoadResult[];
  tokenIssuance: LoadResult;
}

const REPOSITORY = 'bench/signin';

/** A JWT for a pull token on `default` limited to loopback (`allowedIpRanges`). */
async function limitedTokenJwt(target: Target): Promise<string> {
  const management = target.management!;
  const call = async (method: string, path: string, body: unknown) => {
    const response = await fetch(`${management.url}${path}`, {
      method,
      headers: { authorization: management.authorization, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status >= 300)
      throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as { passwords?: { value: string }[] };
  };
  await call('PUT', '/api/registries/default/tokens/bench-limited', {
    properties: { scopeMapId: '_repositories_pull', allowedIpRanges: ['127.0.0.0/8', '::1'] },
  });
  const generated = await call('POST', '/api/registries/default/generateCredentials', {
    tokenId: 'bench-limited',
    name: 'password1',
  });
  const basic = `Basic ${Buffer.from(`bench-limited:${generated.passwords![0]!.value}`).toString('base64')}`;
  const issued = await send(
    `${target.url}/oauth2/token?service=default.localhost&scope=repository:${REPOSITORY}:pull`,
    { headers: { Authorization: basic } },
  );
  expectStatus(issued, 200, 'limited token');
  return (JSON.parse(issued.body.toString()) as { token: string }).token;
}

async function patchDefault(target: Target, properties: Record<string, unknown>): Promise<void> {
  const management = target.management;
  if (!management) throw new Error('the sign-in bench needs Berth with its management API');
  const response = await fetch(`${management.url}/api/registries/default`, {
    method: 'PATCH',
    headers: { authorization: management.authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ properties }),
  });
  if (response.status !== 200) throw new Error(`PATCH default: ${response.status} ${await response.text()}`);
}

/** Measures sign-in's cost on one Berth; alternates anonymous and Bearer runs so drift hits both. */
export async function signInCost(
  berth: Target,
  runs: number,
  options: { connections: number; seconds: number; warmupSeconds: number },
  progress: (message: string) => void,
): Promise<SignInCost> {
  await pushSmallImage(berth, REPOSITORY, 'v1');
  const tokenUrl = `${berth.url}/oauth2/token?service=default.localhost&scope=repository:${REPOSITORY}:pull`;
  const issued = await send(tokenUrl);
  expectStatus(issued, 200, 'berth token');
  const token = (JSON.parse(issued.body.toString()) as { token: string }).token;
  const limited = await limitedTokenJwt(berth);
  const result: SignInCost = {
    anonymous: [],
    bearer: [],
    limitedBearer: [],
    tokenIssuance: undefined as unknown as LoadResult,
  };
  await patchDefault(berth, { anonymousPullEnabled: true });
  try {
    for (let run = 0; run < runs; run++) {
      result.anonymous.push(await manifestLoad(berth, REPOSITORY, 'v1', options, null));
      result.bearer.push(await manifestLoad(berth, REPOSITORY, 'v1', options, `Bearer ${token}`));
      result.limitedBearer.push(await manifestLoad(berth, REPOSITORY, 'v1', options, `Bearer ${limited}`));
      progress(
        `sign-in run ${run + 1}: ${result.anonymous.at(-1)!.requestsPerSecond.toFixed(0)} req/s anonymous, ` +
          `${result.bearer.at(-1)!.requestsPerSecond.toFixed(0)} req/s with a Bearer token, ` +
          `${result.limitedBearer.at(-1)!.requestsPerSecond.toFixed(0)} req/s with a range-limited token's`,
      );
    }
  } finally {
    await patchDefault(berth, { anonymousPullEnabled: false });
  }
  // Token issuance: Basic credentials on every request, verified once and then cached.
  const basic = authorizationFor(berth.url)!;
  const headers = { Authorization: basic };
  await load(tokenUrl, 16, options.warmupSeconds, headers);
  const issuance = await load(tokenUrl, 16, options.seconds, headers);
  if (issuance.non2xx > 0 || issuance.errors > 0)
    throw new Error(`token issuance: ${issuance.non2xx} non-2xx, ${issuance.errors} errors`);
  result.tokenIssuance = issuance;
  progress(
    `token issuance: ${issuance.requestsPerSecond.toFixed(0)} tokens/s (p99 ${issuance.latencyP99Ms} ms)`,
  );
  return result;
}

/** How much slower (in %) the best Bearer run (or the range-limited token's) is than the best anonymous one. */
export function bearerSlowdownPercent(
  cost: SignInCost,
  which: 'bearer' | 'limitedBearer' = 'bearer',
): number {
  const best = (runs: LoadResult[]) => Math.max(...runs.map((r) => r.requestsPerSecond));
  return (1 - best(cost[which]) / best(cost.anonymous)) * 100;
}

// `node --import tsx bench/sign-in.ts`: this measurement alone (after `npm run build`), for a quick
// look without the whole `npm run bench`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-signin-'));
  const root = fileURLToPath(new URL('..', import.meta.url));
  const berth = await startBerthProcess(root, work);
  try {
    const seconds = Number(process.env.BENCH_SECONDS ?? 10);
    const cost = await signInCost(
      berth,
      Number(process.env.BENCH_RUNS ?? 3),
      { connections: 64, seconds, warmupSeconds: 2 },
      (m) => process.stderr.write(`bench: ${m}\n`),
    );
    process.stdout.write(
      `Bearer vs anonymous manifest GET slowdown: ${bearerSlowdownPercent(cost).toFixed(2)}% (target ≤ 5%)\n` +
        `range-limited token's Bearer vs anonymous: ${bearerSlowdownPercent(cost, 'limitedBearer').toFixed(2)}% (target ≤ 5%)\n` +
        `token issuance: ${cost.tokenIssuance.requestsPerSecond.toFixed(0)} tokens/s (target ≥ 500)\n`,
    );
  } finally {
    await berth.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

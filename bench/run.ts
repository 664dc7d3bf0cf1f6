import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchAbuse } from './abuse.js';
import { cliComparison, cliRows, type CliResults, type CliTarget } from './cli-bench.js';
import { cliToolsInstalled } from './cli-tools.js';
import { benchScaleOut } from './scale-out.js';
import { best, pull, pushPostPut, pushSinglePost, settleDisk, type Transfer } from './blob.js';
import { cpuOverheadPercent, guardOverhead, slowdownPercent, type GuardOverhead } from './guard-overhead.js';
import { benchHotPath } from './hot-path.js';
import { manifestLoad, pushSmallImage, type LoadResult } from './manifest.js';
import { loadOptions, MiB, type BenchOptions } from './options.js';
import { generatedPayload, PayloadFile, type Payload } from './payload.js';
import { evaluate, formatTable, writeResults, type Row } from './report.js';
import { rssDuringPush, type RssResult } from './rss.js';
import { bearerSlowdownPercent, signInCost, type SignInCost } from './sign-in.js';
import { distributionInstalled, startBerthProcess, startDistribution, type Target } from './targets.js';

/** A row from another bench module (`bench/network-decision.ts`). */
interface ExternalRow {
  name: string;
  value: number;
  unit: string;
  target?: unknown;
}

/** Everything measured for one registry. */
interface TargetResults {
  pushPostPut: Transfer[];
  pushSinglePost: Transfer[];
  pull: Transfer[];
  manifestGet?: LoadResult;
  guard?: GuardOverhead;
  signIn?: SignInCost;
  rss?: RssResult;
}

const root = fileURLToPath(new URL('..', import.meta.url));
/** Whose `dist/main.js` runs as Berth: `BENCH_BERTH_ROOT` measures another checkout's build (before/after). */
const berthRoot = process.env.BENCH_BERTH_ROOT ?? root;
const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

async function main(): Promise<void> {
  const options = loadOptions();
  const started = new Date();
  build(options);
  const loadBefore = loadavg()[0]!;
  if (loadBefore > 0.5) {
    progress(
      `load average is ${loadBefore.toFixed(2)} on ${cpus().length} cores: other work will skew wall-clock numbers`,
    );
  }
  const work = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  const withDistribution = !options.skipDistribution && distributionInstalled(options.distributionBinary);
  if (!withDistribution) progress(`distribution not used (${options.distributionBinary} missing or skipped)`);
  const results: Partial<Record<Target['name'], TargetResults>> = {};
  let external: ExternalRow[] = [];
  let cli: Partial<Record<Target['name'], CliResults>> = {};
  try {
    cli = await measureWithCli(options, work, withDistribution);
    if (options.only !== 'cli') await measureTransfersAndManifests(options, work, withDistribution, results);
    await measureRss(options, work, withDistribution, results);
    if (options.only !== 'cli') {
      external = [
        ...(await networkDecisionRows()),
        ...(await abuseRows(options, work)),
        ...(await benchHotPath(root, dir(work, 'hot-path'), options, progress)),
        ...(await benchScaleOut(options.quick)),
      ];
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const headline = evaluate([
    ...cliRows(options, cli),
    {
      metric: `RSS growth during a ${options.rssPushBytes / MiB} MiB push`,
      unit: 'MiB',
      berth: results.berth?.rss?.growthMiB,
      distribution: results.distribution?.rss?.growthMiB,
      goal: { kind: 'below', value: 64 },
    },
  ]);
  const rows = options.only === 'cli' ? [] : evaluate(buildRows(options, results, external));
  const table =
    rows.length > 0
      ? `${formatTable(headline)}\n\nNode client (secondary):\n${formatTable(rows)}`
      : formatTable(headline);
  const notes = [
    'headline: curl (blobs) and wrk (manifests); Berth with sign-in on (a Bearer token on every request), distribution without auth',
    ...(cli.distribution
      ? []
      : ["distribution not run: ratios need Debian's docker-registry (apt-get install docker-registry)"]),
    'ratio: how many times better Berth is (throughput: Berth ÷ distribution; CPU: distribution ÷ Berth)',
    `load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after (${cpus().length} cores)`,
    ...(options.berthNodeArgs.length > 0 ? [`Berth ran with node ${options.berthNodeArgs.join(' ')}`] : []),
    ...(options.quick ? ['BENCH_QUICK: small sizes and short runs, a smoke test only'] : []),
  ];
  process.stdout.write(`\n${table}\n${notes.map((note) => `  ${note}`).join('\n')}\n\n`);
  const path = join(root, '.bench', 'results.json');
  writeResults(path, {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    quick: options.quick,
    environment: {
      node: process.version,
      cpus: cpus().length,
      kernel: release(),
      distribution: withDistribution,
      distributionBlobDescriptorCache: options.distributionCache,
      berthNodeArgs: options.berthNodeArgs,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg()[0],
    },
    sizes: { blobBytes: options.blobBytes, rssPushBytes: options.rssPushBytes, runs: options.runs },
    manifestLoad: { connections: options.connections, seconds: options.manifestSeconds },
    headline,
    rows,
    cli,
    raw: results,
    external,
  });
  progress(`results written to ${path}`);
  const missed = [...headline, ...rows].filter((row) => row.met === false).map((row) => row.metric);
  if (missed.length > 0) progress(`targets missed: ${missed.join('; ')}`);
}

/** The curl/wrk comparison on freshly started registries (none when curl or wrk is missing). */
async function measureWithCli(
  options: BenchOptions,
  work: string,
  withDistribution: boolean,
): Promise<Partial<Record<Target['name'], CliResults>>> {
  const tools = cliToolsInstalled();
  if (!tools.curl || !tools.wrk) {
    progress(`curl/wrk comparison skipped: ${tools.curl ? '' : 'curl '}${tools.wrk ? '' : 'wrk '}missing`);
    return {};
  }
  const targets: CliTarget[] = [];
  try {
    const berth = await startBerthProcess(berthRoot, dir(work, 'cli-berth'), options.berthNodeArgs);
    targets.push({ target: berth, basic: berth.management?.authorization });
    if (withDistribution) {
      const workDir = dir(work, 'cli-distribution');
      const target = await startDistribution(options.distributionBinary, workDir, options.distributionCache);
      targets.push({ target, distributionRoot: join(workDir, 'data') });
    }
    return await cliComparison(options, work, targets, progress);
  } finally {
    await Promise.allSettled(targets.map(({ target }) => target.stop()));
  }
}

/** Blob push and pull, and manifest GET, with both registries running side by side. */
async function measureTransfersAndManifests(
  options: BenchOptions,
  work: string,
  withDistribution: boolean,
  results: Partial<Record<Target['name'], TargetResults>>,
): Promise<void> {
  progress(`generating a ${options.blobBytes / MiB} MiB blob`);
  const file = await PayloadFile.generate(join(work, 'blob.bin'), options.blobBytes);
  const targets: Target[] = [];
  try {
    targets.push(await startBerthProcess(berthRoot, dir(work, 'berth'), options.berthNodeArgs));
    if (withDistribution)
      targets.push(
        await startDistribution(
          options.distributionBinary,
          dir(work, 'distribution'),
          options.distributionCache,
        ),
      );
    for (const target of targets) results[target.name] = { pushPostPut: [], pushSinglePost: [], pull: [] };
    const pushed = new Map<Target['name'], Payload>();

    // Runs alternate between registries so drift (disk, thermal) does not favour one.
    for (let run = 0; run < options.runs; run++) {
      for (const target of targets) {
        const payload = file.variant(`${target.name}-post-put-${run}`);
        settleDisk();
        const transfer = await pushPostPut(target, 'bench/blob', payload);
        results[target.name]!.pushPostPut.push(transfer);
        pushed.set(target.name, payload);
        progress(`${target.name} push POST+PUT run ${run + 1}: ${describe(transfer)}`);
      }
    }
    const berth = targets[0]!;
    for (let run = 0; run < options.runs; run++) {
      settleDisk();
      const transfer = await pushSinglePost(berth, 'bench/blob', file.variant(`berth-single-post-${run}`));
      results.berth!.pushSinglePost.push(transfer);
      progress(`berth push POST ?digest= run ${run + 1}: ${describe(transfer)}`);
    }
    settleDisk();
    for (let run = 0; run < options.runs; run++) {
      for (const target of targets) {
        const transfer = await pull(target, 'bench/blob', pushed.get(target.name)!);
        results[target.name]!.pull.push(transfer);
        progress(`${target.name} pull run ${run + 1}: ${describe(transfer)}`);
      }
    }
    for (const target of targets) {
      await pushSmallImage(target, 'bench/image', 'v1');
      const load = await manifestLoad(target, 'bench/image', 'v1', {
        connections: options.connections,
        seconds: options.manifestSeconds,
        warmupSeconds: options.warmupSeconds,
      });
      results[target.name]!.manifestGet = load;
      progress(
        `${target.name} manifest GET: ${load.requestsPerSecond.toFixed(0)} req/s, ` +
          `p99 ${load.latencyP99Ms} ms, server CPU ${load.serverCpuUsPerRequest?.toFixed(0) ?? '?'} µs/req`,
      );
    }
    const manifestLoadOptions = {
      connections: options.connections,
      seconds: options.manifestSeconds,
      warmupSeconds: options.warmupSeconds,
    };
    results.berth!.guard = await guardOverhead(berth, options.runs, manifestLoadOptions, progress);
    results.berth!.signIn = await signInCost(berth, options.runs, manifestLoadOptions, progress);
  } finally {
    await Promise.allSettled(targets.map((target) => target.stop()));
  }
}

/** RSS growth during a large push, each registry freshly started so earlier runs do not set the baseline. */
async function measureRss(
  options: BenchOptions,
  work: string,
  withDistribution: boolean,
  results: Partial<Record<Target['name'], TargetResults>>,
): Promise<void> {
  const starters: (() => Promise<Target>)[] = [
    () => startBerthProcess(berthRoot, dir(work, 'berth-rss'), options.berthNodeArgs),
  ];
  if (withDistribution)
    starters.push(() =>
      startDistribution(options.distributionBinary, dir(work, 'distribution-rss'), options.distributionCache),
    );
  for (const start of starters) {
    const target = await start();
    try {
      progress(`${target.name}: hashing the ${options.rssPushBytes / MiB} MiB generated body`);
      const payload = generatedPayload(options.rssPushBytes, `${target.name}-rss`);
      const warmup = generatedPayload(4 * MiB, `${target.name}-warmup`);
      settleDisk();
      const rss = await rssDuringPush(target, 'bench/rss', payload, warmup, options.rssSampleMs);
      results[target.name] ??= { pushPostPut: [], pushSinglePost: [], pull: [] };
      results[target.name]!.rss = rss;
      progress(
        `${target.name} RSS during push: ${rss.baselineMiB.toFixed(0)} → ${rss.maxMiB.toFixed(0)} MiB ` +
          `(${rss.samples} samples, ${rss.push.mibPerSecond.toFixed(0)} MiB/s)`,
      );
    } finally {
      await target.stop();
    }
  }
}

function buildRows(
  options: BenchOptions,
  results: Partial<Record<Target['name'], TargetResults>>,
  external: ExternalRow[],
): Row[] {
  const berth = results.berth;
  const distribution = results.distribution;
  const bestOf = (runs: Transfer[] | undefined) =>
    runs && runs.length > 0 ? best(runs).mibPerSecond : undefined;
  const rows: Row[] = [
    {
      metric: 'blob push, POST + PUT (best)',
      unit: 'MiB/s',
      berth: bestOf(berth?.pushPostPut),
      distribution: bestOf(distribution?.pushPostPut),
      goal: { kind: 'ratio-at-least', value: 3 },
      better: 'higher',
    },
    {
      metric: 'blob push, single POST ?digest= (best)',
      unit: 'MiB/s',
      berth: bestOf(berth?.pushSinglePost),
      better: 'higher',
    },
    {
      metric: 'blob pull, GET (best)',
      unit: 'MiB/s',
      berth: bestOf(berth?.pull),
      distribution: bestOf(distribution?.pull),
      goal: { kind: 'ratio-at-least', value: 1 },
      better: 'higher',
    },
    {
      metric: 'manifest GET by tag, 64 conn',
      unit: 'req/s',
      berth: berth?.manifestGet?.requestsPerSecond,
      distribution: distribution?.manifestGet?.requestsPerSecond,
      goal: { kind: 'ratio-at-least', value: 5 },
      better: 'higher',
    },
  ];
  if (berth?.guard) {
    rows.push(
      {
        metric: 'manifest GET slowdown, Deny + 100 IP rules vs none',
        unit: '%',
        berth: slowdownPercent(berth.guard),
        goal: { kind: 'below', value: 3 },
      },
      {
        metric: 'server CPU per manifest GET, 100 rules vs none',
        unit: '%',
        berth: cpuOverheadPercent(berth.guard),
      },
    );
  }
  if (berth?.signIn) {
    rows.push(
      {
        metric: 'manifest GET slowdown, Bearer token vs anonymous, 64 conn',
        unit: '%',
        berth: bearerSlowdownPercent(berth.signIn),
        goal: { kind: 'below', value: 5 },
      },
      {
        metric: "manifest GET slowdown, range-limited token's Bearer vs anonymous, 64 conn",
        unit: '%',
        berth: bearerSlowdownPercent(berth.signIn, 'limitedBearer'),
        goal: { kind: 'below', value: 5 },
      },
      {
        metric: 'token issuance, cached credential, 16 conn',
        unit: 'tokens/s',
        berth: berth.signIn.tokenIssuance.requestsPerSecond,
        goal: { kind: 'at-least', value: 500 },
      },
    );
  }
  // CPU the registry process spent: steadier than wall time when the machine is shared.
  rows.push(
    {
      metric: 'server CPU per MiB pushed (median)',
      unit: 'ms',
      berth: medianCpu(berth?.pushPostPut),
      distribution: medianCpu(distribution?.pushPostPut),
      better: 'lower',
    },
    {
      metric: 'server CPU per MiB pulled (median)',
      unit: 'ms',
      berth: medianCpu(berth?.pull),
      distribution: medianCpu(distribution?.pull),
      better: 'lower',
    },
    {
      metric: 'server CPU per manifest GET',
      unit: 'µs',
      berth: berth?.manifestGet?.serverCpuUsPerRequest,
      distribution: distribution?.manifestGet?.serverCpuUsPerRequest,
      better: 'lower',
    },
  );
  for (const row of external) {
    rows.push({
      metric: row.name,
      unit: row.unit,
      berth: row.value,
      ...(row.target !== undefined ? { goal: { kind: 'text', text: String(row.target) } } : {}),
    });
  }
  return rows;
}

/** GET /v2/ latency while each abuse runs and RSS over unread-body requests (bench/abuse.ts), on a fresh Berth. */
async function abuseRows(options: BenchOptions, work: string): Promise<ExternalRow[]> {
  const berth = await startBerthProcess(berthRoot, dir(work, 'berth-abuse'), options.berthNodeArgs);
  try {
    return await benchAbuse(berth, progress);
  } finally {
    await berth.stop();
  }
}

/** Rows of `bench/network-decision.ts` (another engineer's module), when it exists. */
async function networkDecisionRows(): Promise<ExternalRow[]> {
  if (!existsSync(fileURLToPath(new URL('./network-decision.ts', import.meta.url)))) return [];
  // A non-literal specifier: the module may not exist when this file is type-checked.
  const specifier = './network-decision.js';
  try {
    const module = (await import(specifier)) as { benchNetworkDecision?: () => Promise<ExternalRow[]> };
    if (typeof module.benchNetworkDecision !== 'function') return [];
    progress('running bench/network-decision.ts');
    return await module.benchNetworkDecision();
  } catch (error) {
    progress(`network decision bench failed: ${(error as Error).message}`);
    return [];
  }
}

/** `npm run build`, bounded to 3 minutes; a failed build with an existing dist/ is a warning only. */
function build(options: BenchOptions): void {
  if (options.skipBuild) return;
  progress('building (npm run build)');
  try {
    execFileSync('npm', ['run', '--silent', 'build'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 180_000,
    });
  } catch (error) {
    if (!existsSync(join(root, 'dist', 'main.js'))) throw error;
    progress(`build failed (${(error as Error).message.split('\n')[0]}); using the existing dist/`);
  }
}

function medianCpu(runs: Transfer[] | undefined): number | undefined {
  const values = (runs ?? []).map((run) => run.serverCpuMsPerMiB).filter((v): v is number => v !== undefined);
  if (values.length === 0) return undefined;
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}

function describe(transfer: Transfer): string {
  const cpu = transfer.serverCpuMsPerMiB;
  return `${transfer.mibPerSecond.toFixed(0)} MiB/s, server CPU ${cpu === undefined ? '?' : cpu.toFixed(2)} ms/MiB`;
}

function dir(parent: string, name: string): string {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  return path;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});

/** Node flags of `npm start` (package.json): a larger initial heap keeps blob streaming out of full GCs. */
export const BERTH_START_NODE_ARGS = '--initial-heap-size=64';

/** How big and how long each measurement is; `BENCH_QUICK=1` shrinks everything for a smoke run. */
export interface BenchOptions {
  quick: boolean;
  /** Size of the blob pushed and pulled, in bytes. */
  blobBytes: number;
  /** Size of the push during which Berth's RSS is sampled, in bytes. */
  rssPushBytes: number;
  /** Timed runs per throughput metric; the best one is reported. */
  runs: number;
  /** autocannon duration for manifest GET, in seconds, and its warm-up. */
  manifestSeconds: number;
  warmupSeconds: number;
  connections: number;
  /** VmRSS sampling period, in milliseconds. */
  rssSampleMs: number;
  /** Extra `node` flags for the Berth process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
  berthNodeArgs: string[];
  /** Skip `npm run build` and use the existing `dist/`. */
  skipBuild: boolean;
  /** Skip the distribution reference even when it is installed. */
  skipDistribution: boolean;
  /** Path of the distribution binary. */
  distributionBinary: string;
  /** Give distribution its in-memory blob descriptor cache (off: the minimal configuration). */
  distributionCache: boolean;
  /** Simultaneous whole-blob GETs while RSS is sampled (curl `--parallel`). */
  parallelPulls: number;
  /** `BENCH_ONLY=cli`: only the curl/wrk comparison and the RSS measurements. */
  only: 'cli' | undefined;
}

const MiB = 1024 * 1024;

/** Reads the options from the environment. */
export function loadOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  return {
    quick,
    blobBytes: (quick ? 16 : 256) * MiB,
    rssPushBytes: (quick ? 64 : 1024) * MiB,
    runs: quick ? 2 : 3,
    manifestSeconds: quick ? 2 : 10,
    warmupSeconds: quick ? 0.5 : 2,
    connections: 64,
    rssSampleMs: 100,
    // The same flags `npm start` uses, unless overridden.
    berthNodeArgs: (env.BENCH_BERTH_NODE_ARGS ?? BERTH_START_NODE_ARGS).split(/\s+/).filter(Boolean),
    skipBuild: env.BENCH_SKIP_BUILD === '1',
    skipDistribution: env.BENCH_SKIP_DISTRIBUTION === '1',
    distributionBinary: env.BENCH_DISTRIBUTION_BIN ?? '/usr/bin/docker-registry',
    distributionCache: env.BENCH_DISTRIBUTION_CACHE === '1',
    parallelPulls: 64,
    only: env.BENCH_ONLY === 'cli' ? 'cli' : undefined,
  };
}

export { MiB };

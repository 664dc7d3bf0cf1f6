// The normal client of bench/abuse.ts, in its own process: sequential GET /v2/ over one keep-alive
// connection from 127.0.0.2 for ABUSE_MS milliseconds; prints each latency (ms) as a JSON array.
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const url = new URL(process.env.ABUSE_URL!);
const auth = process.env.ABUSE_AUTH!;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const latencies: number[] = [];
const end = Date.now() + Number(process.env.ABUSE_MS ?? 5000);
while (Date.now() < end && latencies.length < 100_000) {
  const start = process.hrtime.bigint();
  const ok = await new Promise<boolean>((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: '/v2/',
        agent,
        headers: { Authorization: auth },
        localAddress: '127.0.0.2',
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      },
    );
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
  // A failed request counts as a 10 s wait: a lock-out must show in the p99.
  latencies.push(ok ? Number(process.hrtime.bigint() - start) / 1e6 : 10_000);
  await sleep(5);
}
agent.destroy();
process.stdout.write(JSON.stringify(latencies));

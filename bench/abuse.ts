// A normal client's GET /v2/ latency while each abuse of issue 7 runs (slow headers, idle and dripping
// bodies, an upload-session flood, bodies answered unread), and Berth's RSS over 10,000 requests whose
// bodies it never reads. Run by `npm run bench` (bench/run.ts); figures go to the results table.

import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { readMemory } from './proc.js';
import type { Target } from './targets.js';

/** One figure for the results table. */
export interface AbuseRow {
  name: string;
  value: number;
  unit: string;
  target?: unknown;
}

const SECONDS = Number(process.env.BENCH_ABUSE_SECONDS ?? 5);
const UNREAD_REQUESTS = Number(process.env.BENCH_UNREAD_REQUESTS ?? 10_000);
const UNREAD_BODY = 1024 * 1024;

type Abuse = (target: Target, auth: string, stop: AbortSignal) => Promise<void>;

/** Measures every abuse against a running Berth; returns rows for the table. */
export async function benchAbuse(target: Target, progress: (line: string) => void): Promise<AbuseRow[]> {
  const auth = target.management!.authorization;
  const rows: AbuseRow[] = [];
  const scenarios: [string, Abuse | undefined][] = [
    ['no abuse', undefined],
    ['1,100 never-finished headers from one address', slowHeaders],
    ['idle bodies (200 connections)', idleBodies],
    ['dripping bodies (200 connections)', drippingBodies],
    ['upload-session flood', sessionFlood],
    ['unread 1 MiB bodies (8 loops)', unreadBodies],
  ];
  for (const [name, abuse] of scenarios) {
    const stop = new AbortController();
    const running = abuse?.(target, auth, stop.signal).catch(() => undefined);
    await sleep(abuse ? 500 : 0);
    const latencies = await normalClient(target.url, auth, SECONDS * 1000);
    stop.abort();
    await running;
    const p99 = percentile(latencies, 0.99);
    progress(`GET /v2/ during ${name}: p99 ${p99.toFixed(1)} ms over ${latencies.length} requests`);
    rows.push({ name: `GET /v2/ p99 during ${name}`, value: round(p99), unit: 'ms', target: '< 50 ms' });
    await sleep(2500);
  }
  const before = readMemory(target.pid).rss;
  const started = Date.now();
  const done = await unreadRequests(target.url, UNREAD_REQUESTS);
  await sleep(1000);
  const after = readMemory(target.pid).rss;
  progress(
    `RSS over ${done} requests answered before their ${UNREAD_BODY / 1024} KiB body was read: ` +
      `${before.toFixed(0)} → ${after.toFixed(0)} MiB (${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  rows.push(
    { name: `RSS before ${done} unread-body requests`, value: Math.round(before), unit: 'MiB' },
    { name: `RSS after ${done} unread-body requests`, value: Math.round(after), unit: 'MiB', target: 'flat' },
  );
  return rows;
}

/** The normal client runs in its own process, so the abusers' work in this one does not delay it. */
async function normalClient(url: string, auth: string, ms: number): Promise<number[]> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./abuse-client.ts', import.meta.url))],
    {
      env: { ...process.env, ABUSE_URL: url, ABUSE_AUTH: auth, ABUSE_MS: String(ms) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  return JSON.parse(out || '[]') as number[];
}

function open(url: string, from: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port), localAddress: from });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(socket));
    socket.once('error', () => resolve(socket));
  });
}

/** `count` connections from 127.0.1.x, each set up by `start` and kept open until stopped. */
async function hold(
  target: Target,
  count: number,
  stop: AbortSignal,
  start: (socket: Socket, index: number) => void,
  spread = true,
): Promise<void> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count && !stop.aborted; i++) {
    const socket = await open(target.url, spread ? `127.0.1.${1 + (i % 16)}` : '127.0.1.1');
    start(socket, i);
    sockets.push(socket);
  }
  await new Promise((resolve) => stop.addEventListener('abort', resolve, { once: true }));
  for (const socket of sockets) socket.destroy();
}

const slowHeaders: Abuse = (target, _auth, stop) =>
  hold(
    target,
    1100,
    stop,
    (socket) => {
      socket.write('GET /v2/ HTTP/1.1\r\nHost: localhost\r\n');
      const timer = setInterval(() => socket.write('X-a: b\r\n'), 1000);
      socket.once('close', () => clearInterval(timer));
    },
    false,
  );

const idleBodies: Abuse = (target, auth, stop) =>
  hold(target, 200, stop, (socket) => {
    socket.write(
      `POST /v2/abuse/repo/blobs/uploads/?digest=sha256:${'a'.repeat(64)} HTTP/1.1\r\nHost: localhost\r\n`,
    );
    socket.write(`Authorization: ${auth}\r\nContent-Length: 1000000\r\n\r\n`);
  });

const drippingBodies: Abuse = (target, auth, stop) =>
  hold(target, 200, stop, (socket) => {
    socket.write(
      `POST /v2/abuse/repo/blobs/uploads/?digest=sha256:${'a'.repeat(64)} HTTP/1.1\r\nHost: localhost\r\n`,
    );
    socket.write(`Authorization: ${auth}\r\nContent-Length: 1000000\r\n\r\n`);
    const timer = setInterval(() => socket.write('0123456789'), 1000);
    socket.once('close', () => clearInterval(timer));
  });

const sessionFlood: Abuse = async (target, auth, stop) => {
  const loops = Array.from({ length: 4 }, async (_, i) => {
    while (!stop.aborted)
      await fetch(`${target.url}/v2/abuse/flood${i}/blobs/uploads/`, {
        method: 'POST',
        headers: { Authorization: auth },
      })
        .then((res) => res.arrayBuffer())
        .catch(() => undefined);
  });
  await Promise.all(loops);
};

const unreadBodies: Abuse = async (target, _auth, stop) => {
  await Promise.all(Array.from({ length: 8 }, () => unreadLoop(target.url, () => !stop.aborted)));
};

async function unreadRequests(url: string, total: number): Promise<number> {
  let sent = 0;
  await Promise.all(Array.from({ length: 8 }, () => unreadLoop(url, () => sent++ < total)));
  return Math.min(sent, total);
}

/** PATCHes of an unknown upload with a body the server answers (404) without reading. */
async function unreadLoop(url: string, more: () => boolean): Promise<void> {
  const body = Buffer.alloc(UNREAD_BODY, 0x61);
  const path = '/v2/abuse/repo/blobs/uploads/00000000-0000-0000-0000-000000000000';
  while (more()) {
    const socket = await open(url, '127.0.0.3');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, 10_000);
      function finish() {
        clearTimeout(timer);
        socket.destroy();
        resolve();
      }
      // As curl sends a large body: ask first, send once told to continue, then wait for the answer.
      socket.once('data', (chunk: Buffer) => {
        if (!chunk.toString('latin1').startsWith('HTTP/1.1 100')) return finish();
        socket.write(body);
        socket.once('data', finish);
      });
      socket.once('close', finish);
      socket.write(
        `PATCH ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
      );
    });
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

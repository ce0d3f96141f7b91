/**
 * A redis-server of a test's own, on a free port with its data in a temporary directory, so a
 * fault test can crash it (kill -9) and start it again on the same port and data. By default it
 * runs with `appendonly yes` and `appendfsync always`, the setting under which an acknowledged
 * write survives a crash of Redis.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './process-service.js';

export type AppendFsync = 'always' | 'everysec' | 'no';

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** Where the append-only file lives. */
  readonly dir: string;
  /** Starts the server (again, on the same port and data) and waits until it answers PING. */
  start(): Promise<void>;
  /** kill -9 of the server; resolves once it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM: Redis flushes the append-only file and exits; resolves once it is gone. */
  stop(): Promise<void>;
  /** Stops the server (cleanly, or by kill -9 with `crash`) and starts it again. */
  restart(options?: { crash?: boolean }): Promise<void>;
  running(): boolean;
  /** What the server printed, for failure messages. */
  log(): string;
  /** Kills the server and deletes its directory. */
  dispose(): Promise<void>;
}

function redisServerPath(): string | undefined {
  const fromEnv = process.env.REDIS_SERVER;
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(fromEnv) ? fromEnv : undefined;
  try {
    const found = execFileSync('sh', ['-c', 'command -v redis-server'], {
      encoding: 'utf8',
    }).trim();
    return found === '' ? undefined : found;
  } catch {
    return undefined;
  }
}

/** Why a private Redis cannot be started here, or undefined when it can. */
export function privateRedisMissing(): string | undefined {
  return redisServerPath() === undefined ? 'redis-server not found (set REDIS_SERVER)' : undefined;
}

/** One PING over a fresh connection: 'PONG', the error Redis answered (e.g. LOADING), or undefined. */
async function redisPing(port: number, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (value: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.slice(1, reply.indexOf('\r\n')));
    });
    socket.on('error', () => done(undefined));
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startPrivateRedis(
  options: { appendfsync?: AppendFsync } = {},
): Promise<PrivateRedis> {
  const binary = redisServerPath();
  if (binary === undefined) throw new Error('cannot start a private Redis: redis-server not found');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'agg-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    options.appendfsync ?? 'always',
    '--save',
    '',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ];
  let child: ChildProcess | undefined;
  let output = '';

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const signal = async (name: NodeJS.Signals) => {
    const victim = child;
    if (victim === undefined || !running()) return;
    const exited = once(victim, 'exit');
    victim.kill(name);
    await exited;
  };

  const server: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    async start() {
      if (running()) throw new Error('private Redis is already running');
      const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      live.add(started);
      started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.once('exit', () => live.delete(started));
      const deadline = Date.now() + 30_000;
      // PONG only once the append-only file is loaded; until then Redis answers LOADING.
      while ((await redisPing(port)) !== 'PONG') {
        if (!running()) throw new Error(`private Redis exited at start:\n${output}`);
        if (Date.now() > deadline) throw new Error(`private Redis not ready in time:\n${output}`);
        await sleep(20);
      }
    },
    kill9: () => signal('SIGKILL'),
    stop: () => signal('SIGTERM'),
    async restart(options = {}) {
      await signal(options.crash === true ? 'SIGKILL' : 'SIGTERM');
      await server.start();
    },
    running,
    log: () => output,
    async dispose() {
      await server.kill9();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

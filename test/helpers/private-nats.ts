/**
 * A nats-server of a test's own (`-js`, its store in a temporary directory, on a free port), so a
 * fault test can crash it (kill -9) and start it again on the same port and data.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './process-service.js';

export interface PrivateNats {
  readonly port: number;
  readonly url: string;
  /** The server's store directory (`-sd`); its streams are under `jetstream/$G/streams/<name>`. */
  readonly storeDir: string;
  /** Starts the server (again, on the same port and store) and waits until it accepts clients. */
  start(): Promise<void>;
  /** kill -9 of the server; resolves once it is gone. */
  kill9(): Promise<void>;
  /** Stops the server cleanly (SIGTERM: it writes its state out); resolves once it is gone. */
  stop(): Promise<void>;
  running(): boolean;
  log(): string;
  /** Kills the server and deletes its store. */
  dispose(): Promise<void>;
}

function natsServerPath(): string | undefined {
  const fromEnv = process.env.NATS_SERVER;
  if (fromEnv !== undefined && fromEnv !== '') return existsSync(fromEnv) ? fromEnv : undefined;
  try {
    const found = execFileSync('sh', ['-c', 'command -v nats-server || ls /usr/sbin/nats-server'], {
      encoding: 'utf8',
    }).trim();
    return found === '' ? undefined : found.split('\n')[0];
  } catch {
    return undefined;
  }
}

/** Why a private NATS cannot be started here, or undefined when it can. */
export function privateNatsMissing(): string | undefined {
  return natsServerPath() === undefined ? 'nats-server not found (set NATS_SERVER)' : undefined;
}

/** Whether the server greets a client (its INFO line) on `port`. */
async function natsGreets(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (value: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('data', (chunk) => done(chunk.toString().startsWith('INFO')));
    socket.on('error', () => done(false));
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startPrivateNats(): Promise<PrivateNats> {
  const binary = natsServerPath();
  if (binary === undefined) throw new Error('cannot start a private NATS: nats-server not found');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'agg-nats-'));
  const args = ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)];
  let child: ChildProcess | undefined;
  let output = '';
  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const stopWith = async (signal: NodeJS.Signals) => {
    const victim = child;
    if (victim === undefined || !running()) return;
    const exited = once(victim, 'exit');
    victim.kill(signal);
    await exited;
  };

  const server: PrivateNats = {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir: dir,
    async start() {
      if (running()) throw new Error('private NATS is already running');
      const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      live.add(started);
      started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
      started.once('exit', () => live.delete(started));
      const deadline = Date.now() + 30_000;
      while (!(await natsGreets(port))) {
        if (!running()) throw new Error(`private NATS exited at start:\n${output}`);
        if (Date.now() > deadline) throw new Error(`private NATS not ready in time:\n${output}`);
        await sleep(20);
      }
      // JetStream recovers its streams from the store after the listener is up.
      while (!output.includes('Server is ready')) {
        if (Date.now() > deadline) throw new Error(`private NATS not ready in time:\n${output}`);
        await sleep(20);
      }
    },
    kill9: () => stopWith('SIGKILL'),
    stop: () => stopWith('SIGTERM'),
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

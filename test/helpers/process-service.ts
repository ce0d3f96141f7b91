/**
 * Runs the built service (`node dist/main.js`, as `npm start` does) as a child process, for tests
 * that restart or kill it for real and for the benchmark (bench/), which share this one helper.
 * It imports nothing of vitest, so a plain script may use it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The project's root directory, where `dist/main.js` is. */
export const ROOT = new URL('../../', import.meta.url).pathname;

/** A TCP port nothing listens on right now (on 127.0.0.1). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** Process groups started here and still running: killed if the test process exits first. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export interface ServiceProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote, for assertions and for failure messages. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /**
   * Sends `signal` to the whole process group (the service and the worker processes it forked)
   * and resolves with the service's exit code (or the signal name). Needs `ownProcessGroup`.
   */
  stopGroup(signal?: NodeJS.Signals): Promise<number | string>;
}

export async function spawnService(
  env: Record<string, string>,
  options: {
    port?: number;
    readyTimeoutMs?: number;
    waitForHealth?: boolean;
    /** Starts the service as the leader of a process group of its own (see `stopGroup`). */
    ownProcessGroup?: boolean;
    /** Options for node itself, e.g. `--cpu-prof` (the benchmark's BENCH_NODE_ARGS). */
    nodeArgs?: readonly string[];
  } = {},
): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), 'dist/main.js'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  if (options.ownProcessGroup === true && child.pid !== undefined) {
    const pgid = child.pid;
    liveGroups.add(pgid);
    child.once('exit', () => liveGroups.delete(pgid));
  }
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const url = `http://127.0.0.1:${port}`;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const [code, sig] = await exited;
    return code ?? sig ?? 'unknown';
  };
  const stopGroup = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (options.ownProcessGroup !== true || child.pid === undefined) {
      throw new Error('stopGroup needs a service started with ownProcessGroup');
    }
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group is already empty
    }
    const [code, sig] = await exited;
    return code ?? sig ?? 'unknown';
  };
  if (options.waitForHealth !== false) {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null) throw new Error(`service exited early:\n${output}`);
      try {
        const response = await fetch(`${url}/health`);
        if (response.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await stop('SIGKILL');
        throw new Error(`service not healthy in time:\n${output}`);
      }
      await sleep(50);
    }
  }
  return { url, child, output: () => output, stop, stopGroup };
}

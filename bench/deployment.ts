/**
 * The service under test, started from the build (`dist/main.js`) as child processes: the API
 * process, and the worker processes when the backend runs them apart. Resident memory is read
 * from /proc (Linux).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { spawnService, type ServiceProcess } from '../test/helpers/process-service.js';

export interface Deployment {
  readonly url: string;
  /** Starts the worker processes (the API process runs none when they run apart). */
  addWorkers(): Promise<void>;
  /** Resident set of all its processes together, in MB. */
  rssMb(): number;
  stop(): Promise<void>;
}

export interface DeployOptions {
  /** Environment of every process: the backend's, and the worker settings. */
  readonly env: Readonly<Record<string, string>>;
  /** Workers in processes of their own (`workerProcesses` of them), or inside the one process. */
  readonly separateWorkers: boolean;
  readonly workerProcesses: number;
  /** Options for node, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the service. */
  readonly nodeArgs: readonly string[];
}

/** Resident set of a process in MB; 0 once it has gone. */
function processRssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb === undefined ? 0 : Number(kb) / 1024;
  } catch {
    return 0;
  }
}

/** Starts the API process (with the workers inside when they do not run apart), once healthy. */
export async function deploy(options: DeployOptions): Promise<Deployment> {
  const env = { LOG_LEVEL: 'warn', ...options.env };
  const api = await spawnService(
    { ...env, ROLE: options.separateWorkers ? 'api' : 'all' },
    { nodeArgs: options.nodeArgs, readyTimeoutMs: 60_000 },
  );
  const processes: ServiceProcess[] = [api];
  return {
    url: api.url,
    async addWorkers() {
      if (!options.separateWorkers) return;
      for (let i = 0; i < options.workerProcesses; i++) {
        processes.push(
          await spawnService(
            { ...env, ROLE: 'worker', INSTANCE_ID: `bench-w${i}` },
            { nodeArgs: options.nodeArgs, waitForHealth: false },
          ),
        );
      }
      // Give worker processes time to join before the clock starts.
      await sleep(1500);
    },
    rssMb: () => processes.reduce((sum, p) => sum + processRssMb(p.child.pid), 0),
    async stop() {
      const stopped = await Promise.all(processes.map((p) => p.stop('SIGTERM')));
      stopped.forEach((code, i) => {
        if (code !== 0) process.stderr.write(`${processes[i]?.output() ?? ''}\n`);
      });
    },
  };
}

/** Redis's `used_memory`, in MB. */
export async function redisUsedMemoryMb(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  const info = await redis.info('memory');
  redis.disconnect();
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 1024 / 1024;
}

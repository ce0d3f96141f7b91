/**
 * A Redis Cluster of a test's own: 3 masters and one replica each, six `redis-server
 * --cluster-enabled yes --appendonly yes` on free ports with their data in a temporary directory,
 * joined by `redis-cli --cluster create --cluster-replicas 1`. A fault test can kill -9 a master and
 * watch its replica take over.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from './process-service.js';

const run = promisify(execFile);

export interface ClusterNode {
  readonly port: number;
  running(): boolean;
  kill9(): Promise<void>;
  /** Starts the node again on its port and data (it rejoins the cluster, as a replica if replaced). */
  start(): Promise<void>;
}

export interface PrivateRedisCluster {
  /** `127.0.0.1:port` of every node, for REDIS_CLUSTER_NODES. */
  readonly nodes: readonly string[];
  readonly servers: readonly ClusterNode[];
  /** The node currently master of `slot`, per the cluster's own view. */
  masterOf(slot: number): Promise<ClusterNode>;
  /** What `redis-cli cluster nodes` says now. */
  describe(): Promise<string>;
  dispose(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 30_000 });
  return stdout;
}

async function waitForPong(port: number): Promise<void> {
  for (let t = 0; ; t++) {
    try {
      if ((await cli(port, 'ping')).trim() === 'PONG') return;
    } catch {
      // not listening yet
    }
    if (t > 500) throw new Error(`redis node ${port} did not start`);
    await sleep(20);
  }
}

/** Starts six nodes and creates the cluster; resolves once every slot is served. */
export async function startPrivateRedisCluster(
  options: { nodeTimeoutMs?: number } = {},
): Promise<PrivateRedisCluster> {
  const root = mkdtempSync(join(tmpdir(), 'agg-redis-cluster-'));
  const servers: ClusterNode[] = [];
  const dispose = async () => {
    await Promise.all(servers.map((s) => s.kill9()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      const dir = join(root, String(port));
      mkdirSync(dir);
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, 'nodes.conf'),
        '--cluster-node-timeout',
        String(options.nodeTimeoutMs ?? 1000),
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--save',
        '',
      ];
      let child: ChildProcess | undefined;
      const running = () =>
        child !== undefined && child.exitCode === null && child.signalCode === null;
      const spawnNode = () => {
        const started = spawn('redis-server', args, { stdio: 'ignore' });
        child = started;
        live.add(started);
        started.once('exit', () => live.delete(started));
      };
      spawnNode();
      servers.push({
        port,
        running,
        async kill9() {
          const victim = child;
          if (victim === undefined || !running()) return;
          const exited = once(victim, 'exit');
          victim.kill('SIGKILL');
          await exited;
        },
        async start() {
          if (running()) throw new Error(`redis node ${port} is already running`);
          spawnNode();
          await waitForPong(port);
        },
      });
    }
    for (const s of servers) await waitForPong(s.port);
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: 60_000 },
    );
    for (let t = 0; ; t++) {
      const infos = await Promise.all(servers.map((s) => cli(s.port, 'cluster', 'info')));
      if (infos.every((i) => i.includes('cluster_state:ok'))) break;
      if (t > 600) throw new Error('the private Redis Cluster did not become ok');
      await sleep(50);
    }
    // Every master has its replica in sync before the tests count on WAIT.
    for (let t = 0; ; t++) {
      const infos = await Promise.all(servers.map((s) => cli(s.port, 'info', 'replication')));
      const masters = infos.filter((i) => i.includes('role:master'));
      if (masters.length === 3 && masters.every((i) => /slave0:.*state=online/.test(i))) break;
      if (t > 600) throw new Error('the private Redis Cluster replicas did not sync');
      await sleep(50);
    }
    const cluster: PrivateRedisCluster = {
      nodes,
      servers,
      async masterOf(slot) {
        const alive = servers.find((s) => s.running());
        if (alive === undefined) throw new Error('no node running');
        const raw = await cli(alive.port, 'cluster', 'nodes');
        for (const line of raw.split('\n')) {
          const parts = line.split(' ');
          if (!(parts[2] ?? '').includes('master') || (parts[2] ?? '').includes('fail')) continue;
          const port = Number((parts[1] ?? '').split('@')[0]?.split(':')[1]);
          for (const range of parts.slice(8)) {
            const [low, high] = range.split('-').map(Number);
            if (slot >= (low ?? -1) && slot <= (high ?? low ?? -1)) {
              const node = servers.find((s) => s.port === port);
              if (node !== undefined) return node;
            }
          }
        }
        throw new Error(`no master serves slot ${slot}`);
      },
      async describe() {
        const alive = servers.find((s) => s.running());
        return alive === undefined ? 'no node running' : cli(alive.port, 'cluster', 'nodes');
      },
      dispose,
    };
    return cluster;
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * A PostgreSQL server of a test's own: `initdb` in a temporary directory, `pg_ctl` on a free
 * port, so a fault test can stop it, crash it (kill -9 of every server process) and start it
 * again on the same port and data without touching the shared server other tests use.
 *
 * The binaries come from PG_BIN, else the newest /usr/lib/postgresql/<version>/bin, else the PATH.
 * PostgreSQL refuses to run as root: as root the commands run as the `postgres` user (runuser).
 * `fsync` is off for speed: a crash of the server process keeps what the OS already has, so the
 * tests still see crash recovery; only a crash of the machine would need fsync.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from './process-service.js';

const run = promisify(execFile);

export interface PrivatePostgres {
  readonly port: number;
  /** The cluster's directory (PGDATA). */
  readonly dataDir: string;
  /** URL of a database of this server (`postgres` by default). */
  url(database?: string): string;
  /** Starts the server (after a stop or a crash: on the same port and data) and waits for it. */
  start(): Promise<void>;
  /** `pg_ctl stop`: `fast` is a clean stop, `immediate` aborts like a crash (recovery on start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** kill -9 of the postmaster and every server process it started: a crash of the server. */
  kill9(): Promise<void>;
  /** Stops the server (`fast`, or `immediate` for an abort) and starts it again. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Whether the postmaster is alive. */
  running(): boolean;
  /** The server log, for failure messages. */
  log(): string;
  /** Stops the server and deletes its directory. */
  dispose(): Promise<void>;
}

function binDir(): string | undefined {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv !== undefined && fromEnv !== '')
    return existsSync(join(fromEnv, 'pg_ctl')) ? fromEnv : undefined;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0] !== undefined) return join(root, versions[0], 'bin');
  }
  try {
    const onPath = execFileSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' }).trim();
    return onPath === '' ? undefined : onPath.replace(/\/pg_ctl$/, '');
  } catch {
    return undefined;
  }
}

const isRoot = process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

function hasRunuser(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v runuser'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why a private PostgreSQL cannot be started here, or undefined when it can. */
export function privatePostgresMissing(): string | undefined {
  const bin = binDir();
  if (bin === undefined || !existsSync(join(bin, 'initdb'))) {
    return 'initdb/pg_ctl not found (set PG_BIN)';
  }
  if (isRoot && (postgresUser() === undefined || !hasRunuser())) {
    return 'running as root without a postgres user and runuser to start PostgreSQL as';
  }
  return undefined;
}

/** Pids of the live children of `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may contain spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** Servers still running when the test process exits are killed, so none outlives a run. */
const live = new Set<() => void>();
process.once('exit', () => {
  for (const kill of live) kill();
});

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const missing = privatePostgresMissing();
  if (missing !== undefined) throw new Error(`cannot start a private PostgreSQL: ${missing}`);
  const bin = binDir() ?? '';
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'agg-pg-'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  const user = isRoot ? postgresUser() : undefined;
  if (user !== undefined) chownSync(root, user.uid, user.gid);

  const command = (tool: string, args: string[]) => {
    const file = join(bin, tool);
    return isRoot
      ? run('runuser', ['-u', 'postgres', '--', file, ...args], { maxBuffer: 16 << 20 })
      : run(file, args, { maxBuffer: 16 << 20 });
  };

  await command('initdb', [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-sync',
    '--no-instructions',
  ]);
  const serverOptions = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    // TCP only: a Unix socket's lock file would outlive a kill -9 like postmaster.pid does.
    "-c unix_socket_directories=''",
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=60',
    '-c shared_buffers=64MB',
  ].join(' ');

  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const running = () => {
    const pid = postmasterPid();
    return pid !== undefined && alive(pid);
  };
  const killAll = () => {
    const pid = postmasterPid();
    if (pid === undefined || !alive(pid)) return [];
    // Stopped first, the postmaster forks no new backend between the listing and the kill.
    process.kill(pid, 'SIGSTOP');
    const victims = [...childrenOf(pid), pid];
    for (const victim of victims) {
      try {
        process.kill(victim, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return victims;
  };
  live.add(killAll);

  const server: PrivatePostgres = {
    port,
    dataDir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async start() {
      try {
        await command('pg_ctl', [
          '-D',
          dataDir,
          '-l',
          logFile,
          '-o',
          serverOptions,
          '-w',
          '-t',
          '60',
          'start',
        ]);
      } catch (error) {
        throw new Error(`private PostgreSQL did not start:\n${server.log().slice(-3000)}`, {
          cause: error,
        });
      }
    },
    async stop(mode = 'fast') {
      if (!running()) return;
      await command('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
    },
    async kill9() {
      const victims = killAll();
      // The data directory may be used again only once no process of the old server is left.
      for (let i = 0; i < 200 && victims.some(alive); i++) await sleep(25);
      if (victims.some(alive)) throw new Error('PostgreSQL processes survived kill -9');
      // The dead postmaster's parent is init, which in some containers never reaps it; PostgreSQL
      // would take the zombie for a live server named in the stale lock file and refuse to start.
      if (victims.length > 0 && postmasterPid() === victims[victims.length - 1]) {
        rmSync(join(dataDir, 'postmaster.pid'), { force: true });
      }
    },
    async restart(mode = 'fast') {
      await server.stop(mode);
      await server.start();
    },
    running,
    log() {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    },
    async dispose() {
      try {
        await server.stop('immediate');
      } catch {
        await server.kill9();
      }
      live.delete(killAll);
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (error) {
    await server.dispose();
    throw error;
  }
  return server;
}

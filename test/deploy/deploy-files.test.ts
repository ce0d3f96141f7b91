/**
 * The deployment files checked against the code they deploy, without a container engine:
 * docker-compose.yml is parsed as YAML and the Dockerfile as instructions, and both are compared
 * with package.json, src/config.ts and the publish CLI. A renamed setting, a changed start command
 * or a dropped durability flag fails here instead of in a deployment.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

// ---- docker-compose.yml ---------------------------------------------------------------------

type EnvValue = string | number | boolean | null;

interface ComposeService {
  image?: string;
  build?: string | { context?: string };
  command?: string | string[];
  environment?: Record<string, EnvValue> | string[];
  ports?: (string | number | { target?: number | string; published?: number | string })[];
  network_mode?: string;
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
  profiles?: string[];
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const compose = parse(read('docker-compose.yml')) as ComposeFile;

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (found === undefined) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

/** What Compose substitutes for `${VAR:-default}`, `${VAR-default}` and `${VAR}` with VAR unset. */
function interpolate(value: string): string {
  return value.replace(/\$\{[A-Z0-9_]+(?::?-([^}]*))?\}/g, (_match, fallback?: string) => {
    return fallback ?? '';
  });
}

function environment(svc: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  const raw = svc.environment ?? {};
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const [name = '', ...value] = entry.split('=');
      env[name] = interpolate(value.join('='));
    }
  } else {
    for (const [name, value] of Object.entries(raw)) {
      env[name] = interpolate(value === null ? '' : String(value));
    }
  }
  return env;
}

function words(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/).filter((w) => w !== '');
}

function publishedPorts(svc: ComposeService): { published: string; target: string }[] {
  return (svc.ports ?? []).map((port) => {
    if (typeof port === 'object') {
      return { published: String(port.published ?? ''), target: String(port.target ?? '') };
    }
    // [host-ip:]published:target[/protocol]
    const parts = String(port)
      .replace(/\/\w+$/, '')
      .split(':');
    const target = parts.at(-1) ?? '';
    return { published: parts.length > 1 ? (parts.at(-2) ?? '') : '', target };
  });
}

function volumeMounts(svc: ComposeService): { source: string; target: string }[] {
  return (svc.volumes ?? []).map((volume) => {
    if (typeof volume === 'object')
      return { source: volume.source ?? '', target: volume.target ?? '' };
    const [source = '', target = ''] = volume.split(':');
    return { source, target };
  });
}

function dependencyConditions(svc: ComposeService): Record<string, string | undefined> {
  const deps = svc.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, d]) => [name, d.condition]));
}

/** Compose durations: `15s`, `1m30s`, `500ms`. */
function seconds(duration: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6 };
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) {
    total += Number(amount) * (units[unit ?? ''] ?? Number.NaN);
  }
  return total;
}

// ---- Dockerfile -----------------------------------------------------------------------------

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** Index of the build stage (FROM) the instruction belongs to. */
  readonly stage: number;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    // Comment lines may sit inside a continued instruction; Docker drops them.
    if (/^\s*#/.test(line)) continue;
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const keyword = (match[1] ?? '').toUpperCase();
    const args = (match[2] ?? '').trim().replace(/\s+/g, ' ');
    if (keyword === 'FROM') {
      const [from = '', as, name] = args.split(' ');
      stages.push({
        from,
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        instructions: [],
      });
    }
    const stage = stages.at(-1);
    if (stage === undefined) continue;
    stage.instructions.push({ keyword, args, stage: stages.length - 1 });
  }
  return stages;
}

function of(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** ENV in both forms: `ENV A=1 B=2` and the legacy `ENV A 1`. */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of of(stage, 'ENV')) {
    if (!args.includes('=')) {
      const [name = '', ...value] = args.split(' ');
      env[name] = value.join(' ');
      continue;
    }
    for (const pair of args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g) ?? []) {
      const [name = '', ...value] = pair.split('=');
      env[name] = value.join('=').replace(/^"|"$/g, '');
    }
  }
  return env;
}

/** Sources of a COPY or ADD from the build context (not from another stage). */
function copySources(instruction: Instruction): string[] {
  const parts = instruction.args.split(' ').filter((p) => !p.startsWith('--'));
  return parts.slice(0, -1).map((p) => p.replace(/^\.\//, '').replace(/\/$/, ''));
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const runtime = dockerfile.at(-1) as Stage;
const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
const configSource = read('src/config.ts');
const cliSource = read('src/cli/main.ts');

/** Every environment variable src/config.ts reads, by name. */
const configNames = new Set(
  [...configSource.matchAll(/'([A-Z][A-Z0-9_]+)'|env\.([A-Z][A-Z0-9_]+)/g)].map(
    (m) => m[1] ?? m[2] ?? '',
  ),
);

// ---- the checks -----------------------------------------------------------------------------

describe('Dockerfile', () => {
  it('builds in one stage and runs from another on Node 20 or later', () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile) {
      const major = /^node:(\d+)/.exec(stage.from)?.[1];
      expect(Number(major), stage.from).toBeGreaterThanOrEqual(20);
    }
    const builder = dockerfile.slice(0, -1);
    const runs = builder.flatMap((s) => of(s, 'RUN')).map((r) => r.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    const fromBuilder = of(runtime, 'COPY').filter((c) => /--from=/.test(c.args));
    expect(fromBuilder.map((c) => c.args).join('\n')).toMatch(/--from=\S+ \S*dist\S* /);
    // The runtime stage never compiles: it gets dist/ from the build stage.
    expect(of(runtime, 'RUN').some((r) => /npm run build|\btsc\b/.test(r.args))).toBe(false);
  });

  it('installs only production dependencies in the runtime stage, never running `prepare`', () => {
    const installs = of(runtime, 'RUN').filter((r) => /\bnpm (ci|install|prune)\b/.test(r.args));
    expect(installs.length).toBeGreaterThan(0);
    expect(installs.some((r) => /--omit=dev/.test(r.args))).toBe(true);
    expect(
      runtime.instructions.some((i) => i.keyword === 'COPY' && /node_modules/.test(i.args)),
    ).toBe(false);
    // `prepare` runs the build, which cannot work without the dev dependencies or the sources.
    if (packageJson.scripts.prepare !== undefined) {
      for (const stage of dockerfile) {
        for (const run of of(stage, 'RUN').filter((r) => /\bnpm (ci|install)\b/.test(r.args))) {
          expect(run.args).toMatch(/--ignore-scripts/);
        }
      }
    }
  });

  it('starts exactly what `npm start` starts, with no ENTRYPOINT in front of it', () => {
    const cmd = of(runtime, 'CMD');
    expect(cmd).toHaveLength(1);
    const args = JSON.parse(cmd[0]?.args ?? '') as string[];
    expect(args).toEqual((packageJson.scripts.start ?? '').split(/\s+/));
    expect(of(runtime, 'ENTRYPOINT')).toHaveLength(0);
  });

  it('runs as a user other than root, in production mode, on port 8080', () => {
    const user = of(runtime, 'USER').at(-1)?.args ?? 'root';
    expect(user.split(':')[0]).not.toMatch(/^(root|0)$/);
    const env = envOf(runtime);
    expect(env.NODE_ENV).toBe('production');
    expect(of(runtime, 'EXPOSE').map((e) => e.args)).toEqual(['8080']);
    // The port the service listens on when PORT is not set.
    expect(loadConfig({}).port).toBe(8080);
  });

  it('gives DATA_DIR a directory the runtime user owns', () => {
    const env = envOf(runtime);
    const dataDir = env.DATA_DIR ?? '';
    expect(dataDir).toMatch(/^\//);
    const user = of(runtime, 'USER').at(-1)?.args.split(':')[0] ?? '';
    const chown = of(runtime, 'RUN').find(
      (r) => r.args.includes(`chown`) && r.args.includes(user) && r.args.includes(dataDir),
    );
    expect(chown, `a RUN that chowns ${dataDir} to ${user}`).toBeDefined();
    // Any setting the image sets for the service is one the service reads.
    for (const name of Object.keys(env).filter((n) => n !== 'NODE_ENV')) {
      expect(configNames, name).toContain(name);
    }
  });

  it('checks GET /health with node (no curl in the image) on the port the service uses', () => {
    const check = of(runtime, 'HEALTHCHECK');
    expect(check).toHaveLength(1);
    const [, command = ''] = (check[0]?.args ?? '').split(/ CMD /);
    const args = JSON.parse(command) as string[];
    expect(args[0]).toBe('node');
    const script = args.join(' ');
    expect(script).toContain('/health');
    expect(script).toMatch(/process\.env\.PORT \|\| 8080/);
    expect(script).not.toMatch(/\bcurl\b|\bwget\b/);
  });

  it('copies what the build script needs, and .dockerignore keeps it in the context', () => {
    const builder = dockerfile.slice(0, -1);
    const copied = builder
      .flatMap((s) => of(s, 'COPY'))
      .filter((c) => !/--from=/.test(c.args))
      .flatMap(copySources);
    const tsconfigBuild = JSON.parse(read('tsconfig.build.json')) as { extends?: string };
    const needed = [
      'package.json',
      'package-lock.json',
      'src',
      ...(packageJson.scripts.build ?? '').split(/\s+/).filter((w) => /\.(json|mjs|js)$/.test(w)),
      ...(tsconfigBuild.extends === undefined ? [] : [tsconfigBuild.extends.replace(/^\.\//, '')]),
    ];
    for (const path of needed) {
      const covered = copied.some((c) => c === path || path.startsWith(`${c}/`) || c === '.');
      expect(covered, `the build stage copies ${path}`).toBe(true);
    }
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const matches = (pattern: string, path: string) =>
      new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`).test(
        path,
      );
    for (const path of copied) {
      const top = path.split('/')[0] ?? '';
      const hit = ignored.find((p) => !p.startsWith('!') && (matches(p, path) || matches(p, top)));
      expect(hit, `.dockerignore excludes ${path}`).toBeUndefined();
    }
    for (const path of ['node_modules', 'dist', 'data', '.git', 'test-results']) {
      expect(ignored, `.dockerignore lists ${path}`).toContain(path);
    }
  });
});

describe('docker-compose.yml', () => {
  it('names the aggregator, PostgreSQL, Redis and an optional publisher', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['aggregator', 'postgres', 'publisher', 'redis'].sort(),
    );
    const build = service('aggregator').build;
    expect(typeof build === 'string' ? build : build?.context).toBe('.');
    expect(service('postgres').image).toMatch(/^postgres:16\b/);
    expect(service('redis').image).toMatch(/^redis:7\b/);
  });

  it('publishes port 8080 of the aggregator and nothing else', () => {
    expect(publishedPorts(service('aggregator'))).toEqual([{ published: '8080', target: '8080' }]);
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.network_mode, name).toBeUndefined();
      if (name !== 'aggregator') expect(svc.ports, `${name} publishes no port`).toBeUndefined();
    }
  });

  it('keeps PostgreSQL and Redis data in named volumes', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const cases: [string, string][] = [
      ['postgres', '/var/lib/postgresql/data'],
      ['redis', '/data'],
    ];
    for (const [name, target] of cases) {
      const mount = volumeMounts(service(name)).find((m) => m.target === target);
      expect(mount, `${name} mounts ${target}`).toBeDefined();
      expect(declared, `${name}'s volume is a named volume`).toContain(mount?.source);
    }
  });

  it('runs Redis with the append-only file on, so queued events survive a Redis crash', () => {
    const command = words(service('redis').command).join(' ');
    expect(command).toMatch(/--appendonly yes\b/);
    expect(command).toMatch(/--appendfsync (always|everysec)\b/);
    expect(command).not.toMatch(/--maxmemory-policy (?!noeviction)/);
  });

  it('health-checks PostgreSQL with pg_isready and Redis with PING', () => {
    const postgres = service('postgres');
    expect(words(postgres.healthcheck?.test).join(' ')).toContain('pg_isready');
    const env = environment(postgres);
    expect(env.POSTGRES_PASSWORD).toBeTruthy();
    expect(env.POSTGRES_DB).toBeTruthy();
    expect(words(service('redis').healthcheck?.test).join(' ')).toMatch(/redis-cli.*\bping\b/i);
  });

  it('starts the aggregator only once PostgreSQL and Redis are healthy', () => {
    expect(dependencyConditions(service('aggregator'))).toEqual({
      postgres: 'service_healthy',
      redis: 'service_healthy',
    });
    // service_healthy on the aggregator needs a check: the image's, unless compose disables it.
    expect(service('aggregator').healthcheck?.disable).not.toBe(true);
    expect(of(runtime, 'HEALTHCHECK')).toHaveLength(1);
  });

  it('sets only settings src/config.ts reads, and together they are a valid configuration', () => {
    const aggregator = service('aggregator');
    const env = environment(aggregator);
    for (const name of Object.keys(env)) {
      expect(configNames, `src/config.ts reads ${name}`).toContain(name);
    }
    const config = loadConfig({ ...envOf(runtime), ...env });
    // The production backends, reached by their service names on the compose network.
    const database = new URL(config.databaseUrl ?? '');
    const postgres = environment(service('postgres'));
    expect(database.hostname).toBe('postgres');
    expect(decodeURIComponent(database.username)).toBe(postgres.POSTGRES_USER ?? 'postgres');
    expect(decodeURIComponent(database.password)).toBe(postgres.POSTGRES_PASSWORD);
    expect(database.pathname).toBe(`/${postgres.POSTGRES_DB}`);
    expect(new URL(config.redisUrl ?? '').hostname).toBe('redis');
    expect(String(config.port)).toBe(publishedPorts(aggregator)[0]?.target);
  });

  it('gives the aggregator time to finish its batches on stop', () => {
    const config = loadConfig({ ...envOf(runtime), ...environment(service('aggregator')) });
    // src/main.ts forces the exit this long after the configured shutdown timeout.
    const margin = Number(/shutdownTimeoutMs \+ (\d+)/.exec(read('src/main.ts'))?.[1]);
    expect(margin).toBeGreaterThan(0);
    const grace = seconds(service('aggregator').stop_grace_period ?? '10s');
    expect(grace * 1000).toBeGreaterThanOrEqual(config.shutdownTimeoutMs + margin);
  });

  it('runs the publish CLI against the aggregator only under the publisher profile', () => {
    const publisher = service('publisher');
    expect(publisher.profiles).toEqual(['publisher']);
    expect(dependencyConditions(publisher)).toEqual({ aggregator: 'service_healthy' });
    const command = words(publisher.command);
    const cli = (packageJson.scripts.publisher ?? '').split(/\s+/);
    expect(command.slice(0, cli.length)).toEqual(cli);
    // Every flag it passes is one the CLI documents.
    const known = new Set([...cliSource.matchAll(/^\s+--([a-z-]+)/gm)].map((m) => m[1]));
    const flags = command.filter((w) => w.startsWith('--')).map((w) => w.slice(2));
    expect(flags.length).toBeGreaterThan(0);
    for (const flag of flags) expect(known, `the CLI knows --${flag}`).toContain(flag);
    const url = new URL(command[command.indexOf('--url') + 1] ?? '');
    expect(url.hostname).toBe('aggregator');
    expect(url.port).toBe(publishedPorts(service('aggregator'))[0]?.target);
  });
});

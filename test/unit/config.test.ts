import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('has defaults that run the embedded service', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      role: 'all',
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: undefined,
      redisUrl: undefined,
      dataDir: './data',
      maxEventsPerRequest: 1000,
      workersEnabled: true,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads every setting', () => {
    const config = loadConfig({
      ROLE: 'worker',
      PORT: '9000',
      DATABASE_URL: 'postgres://u@db:5432/x',
      REDIS_URL: 'redis://r:6379',
      WORKERS_ENABLED: 'no',
      QUEUE_MAX_EVENTS: '10',
    });
    expect(config).toMatchObject({
      role: 'worker',
      port: 9000,
      databaseUrl: 'postgres://u@db:5432/x',
      redisUrl: 'redis://r:6379',
      workersEnabled: false,
      queueMaxEvents: 10,
    });
  });

  it('forks one worker process by default on PostgreSQL only', () => {
    expect(loadConfig({}).workerProcesses).toBe(0);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/x' }).workerProcesses).toBe(1);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/x', ROLE: 'api' }).workerProcesses).toBe(0);
    expect(
      loadConfig({ DATABASE_URL: 'postgres://db/x', WORKER_PROCESSES: '3' }).workerProcesses,
    ).toBe(3);
    expect(() => loadConfig({ WORKER_PROCESSES: '2' })).toThrow(
      /WORKER_PROCESSES needs DATABASE_URL/,
    );
  });

  it('lists every bad value at once', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        ROLE: 'boss',
        DATABASE_URL: 'mysql://x',
        REDIS_URL: 'not a url',
        WORKER_CONCURRENCY: '0',
        WORKERS_ENABLED: 'maybe',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toMatch(/PORT must be a whole number/);
    expect(problems.join('\n')).toMatch(/ROLE must be one of api, worker, all/);
    expect(problems.join('\n')).toMatch(/DATABASE_URL must use postgres: or postgresql:/);
    expect(problems.join('\n')).toMatch(/REDIS_URL is not a URL/);
    expect(problems.join('\n')).toMatch(/WORKER_CONCURRENCY must be between 1 and 64/);
  });
});

describe('API_KEYS', () => {
  it('keeps names, scopes and a digest, never the secret', () => {
    const config = loadConfig({
      API_KEYS:
        'billing:publish:0123456789abcdefXYZ, ops:admin:fedcba9876543210, viewer:read+publish:abcdefghijklmnop',
    });
    expect(config.apiKeys.map((k) => [k.name, k.scopes])).toEqual([
      ['billing', ['publish']],
      ['ops', ['admin']],
      ['viewer', ['read', 'publish']],
    ]);
    expect(JSON.stringify(config)).not.toContain('0123456789abcdefXYZ');
    expect(config.apiKeys[0]?.digest).toHaveLength(32);
  });

  it('names each bad entry without echoing its secret', () => {
    let error: unknown;
    try {
      loadConfig({
        API_KEYS:
          'a:publish:short-secret-1,b:owner:0123456789abcdef,:read:0123456789abcdef,a:read:0123456789abcdef0',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('entry 1 (a): the secret must be at least 16 characters');
    expect(message).toContain('entry 2 (b): scopes must be among publish, read, admin');
    expect(message).toContain('entry 3: the name must be');
    expect(message).not.toContain('short-secret-1');
  });

  it('reads rate limits, off by default', () => {
    expect(loadConfig({}).rateLimitMax).toBe(0);
    expect(loadConfig({ RATE_LIMIT_MAX: '100', RATE_LIMIT_WINDOW_MS: '1000' })).toMatchObject({
      rateLimitMax: 100,
      rateLimitWindowMs: 1000,
    });
  });
});

describe('retention settings', () => {
  it('reads a global retention and per-topic overrides', () => {
    const config = loadConfig({ RETENTION_DAYS: '30', RETENTION_TOPIC_DAYS: 'audit=0, debug=1' });
    expect(config.retentionDays).toBe(30);
    expect([...config.retentionTopicDays]).toEqual([
      ['audit', 0],
      ['debug', 1],
    ]);
  });

  it('refuses entries that are not topic=days', () => {
    expect(() => loadConfig({ RETENTION_TOPIC_DAYS: 'audit=forever,=3,debug' })).toThrow(
      /"audit=forever" is not topic=days[\s\S]*"=3" is not topic=days[\s\S]*"debug" is not/,
    );
  });

  it('reads the partition interval, a day by default, and refuses any other', () => {
    expect(loadConfig({}).partitionInterval).toBe('day');
    for (const interval of ['hour', 'day', 'week', 'month'] as const) {
      expect(loadConfig({ PARTITION_INTERVAL: interval }).partitionInterval).toBe(interval);
    }
    for (const bad of ['minute', 'year', '1d', 'DAY ']) {
      expect(() => loadConfig({ PARTITION_INTERVAL: bad })).toThrow(/PARTITION_INTERVAL/);
    }
  });
});

describe('roles', () => {
  it('refuses ROLE=api or worker on the embedded store, which one process must own', () => {
    expect(() => loadConfig({ ROLE: 'api' })).toThrow(/ROLE=api needs DATABASE_URL/);
    expect(() => loadConfig({ ROLE: 'worker' })).toThrow(/ROLE=worker needs DATABASE_URL/);
    expect(loadConfig({ ROLE: 'api', DATABASE_URL: 'postgres://db/x' }).role).toBe('api');
  });
});

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

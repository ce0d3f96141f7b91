/** `npm start` with a bad setting stops at once and says what is wrong. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/process-service.js';

describe('start with a bad configuration', () => {
  it('exits 2 naming each bad value', () => {
    const result = spawnSync(process.execPath, ['dist/main.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: '99999', ROLE: 'everything' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('PORT must be between 0 and 65535, got 99999');
    expect(result.stderr).toContain('ROLE must be one of api, worker, all, got "everything"');
  });
});

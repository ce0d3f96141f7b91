/**
 * README.md's Configuration table against src/config.ts: every variable the code reads is in the
 * table and every row names one it reads; each default the table gives is the code's. A default
 * is checked by behaviour, not by reading the source: setting the variable to the value the table
 * names must give exactly the configuration of leaving it unset.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** Variable → the default cell's value: its first `code` span, or undefined for "unset". */
function tableDefaults(): Map<string, string | undefined> {
  const section = /^## Configuration\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
  const rows = new Map<string, string | undefined>();
  for (const match of section.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|([^|]*)\|/gm)) {
    const cell = (match[2] ?? '').trim();
    const code = /`([^`]*)`/.exec(cell)?.[1];
    rows.set(match[1] ?? '', cell.startsWith('unset') ? undefined : code);
  }
  return rows;
}

/** Every environment variable loadConfig reads, whatever it finds. */
function variablesRead(): Set<string> {
  const read = new Set<string>();
  const env = new Proxy(
    {},
    {
      get(_target, name) {
        if (typeof name === 'string') read.add(name);
        return undefined;
      },
    },
  );
  loadConfig(env);
  return read;
}

/** The table writes defaults that depend on the process in words; here they are values. */
function concrete(value: string): string {
  return value.replace('<hostname>', hostname()).replace('<pid>', String(process.pid));
}

describe('README configuration table', () => {
  const rows = tableDefaults();

  it('lists every variable config.ts reads, and no other', () => {
    expect(rows.size).toBeGreaterThan(20);
    expect([...rows.keys()].sort()).toEqual([...variablesRead()].sort());
  });

  it('gives each default as config.ts has it', () => {
    const defaults = loadConfig({});
    for (const [name, value] of rows) {
      if (value === undefined) {
        // "unset": no value stands in for it, so setting it empty changes nothing.
        expect(loadConfig({ [name]: '' }), name).toEqual(defaults);
        continue;
      }
      expect(loadConfig({ [name]: concrete(value) }), `${name}=${value}`).toEqual(defaults);
    }
  });
});

/**
 * `npm run bench:docs`: renders the saved results into docs/benchmarks.md and README.md between
 * their `bench:` markers (see doc-tables.ts). `--check` changes nothing and fails when a document
 * is not what its results render to.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { renderDocument } from './doc-tables.js';

const ROOT = new URL('../', import.meta.url);
const DOCUMENTS = ['docs/benchmarks.md', 'README.md'];

const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
const read = (file: string) => readFileSync(new URL(`bench/${file}`, ROOT), 'utf8');

let stale = 0;
for (const document of DOCUMENTS) {
  const url = new URL(document, ROOT);
  const before = readFileSync(url, 'utf8');
  const after = await renderDocument(before, url.pathname, read);
  if (after === before) continue;
  if (values.check) {
    process.stderr.write(`${document} is not what its benchmark results render to\n`);
    stale++;
  } else {
    writeFileSync(url, after);
    process.stderr.write(`${document} rendered\n`);
  }
}
process.exit(stale === 0 ? 0 : 1);

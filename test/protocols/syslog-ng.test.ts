/**
 * A private syslog-ng (its own configuration, pid, control and persist files in a temporary
 * directory; a TCP source on a free loopback port) ships lines through its `http()` destination
 * to the Elasticsearch bulk API, in batches, exactly as docs/shippers.md tells a user to configure
 * it. The service is killed (-9) and started again mid-stream; every line is stored once and the
 * counters add up. Needs the Debian packages syslog-ng-core and syslog-ng-mod-http (.ci/run
 * installs them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { REQUIRE_SERVICES } from '../helpers/environment.js';
import { stats, type Stats } from '../helpers/http.js';
import { freePort, spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';
import { topicEvents } from '../helpers/topic-events.js';

const LINES = 400;
const syslogNg = spawnSync('syslog-ng', ['--version'], { encoding: 'utf8' });
const installed = syslogNg.status === 0;
const missing = installed
  ? undefined
  : 'syslog-ng is not installed (syslog-ng-core, syslog-ng-mod-http)';
if (!installed && REQUIRE_SERVICES) throw new Error(missing);

/** The configuration of docs/shippers.md, with this test's ports, topic and files. */
function syslogNgConfig(sourcePort: number, servicePort: number, topic: string): string {
  return `@version: 3.38
options { threaded(yes); time-reopen(1); stats-freq(0); ts-format(iso); frac-digits(6); };

source s_lines { network(ip("127.0.0.1") port(${sourcePort}) transport("tcp") flags(no-parse)); };

destination d_aggregator {
  http(
    url("http://127.0.0.1:${servicePort}/es/_bulk")
    method("POST")
    headers("Content-Type: application/x-ndjson")
    body("{\\"create\\":{\\"_index\\":\\"${topic}\\"}}\\n$(format-json @timestamp=\${ISODATE} host.name=\${HOST} message=\${MESSAGE} program=\${PROGRAM})")
    delimiter("\\n")
    body-suffix("\\n")
    batch-lines(50)
    batch-timeout(200)
    workers(2)
  );
};

log { source(s_lines); destination(d_aggregator); };
`;
}

async function startSyslogNg(dir: string, config: string): Promise<ChildProcess> {
  const file = join(dir, 'syslog-ng.conf');
  writeFileSync(file, config);
  const check = spawnSync('syslog-ng', ['--syntax-only', '--cfgfile', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`syslog-ng refused its configuration:\n${check.stderr}`);
  const child = spawn(
    'syslog-ng',
    [
      '--foreground',
      '--stderr',
      '--no-caps',
      '--cfgfile',
      file,
      '--pidfile',
      join(dir, 'syslog-ng.pid'),
      '--control',
      join(dir, 'syslog-ng.ctl'),
      '--persist-file',
      join(dir, 'syslog-ng.persist'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  child.once('exit', (code) => {
    if (code !== 0 && code !== null) console.error(`syslog-ng exited ${code}:\n${output}`);
  });
  return child;
}

async function connectWhenListening(port: number): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (error) {
      if (attempt > 100) throw error;
      await sleep(100);
    }
  }
}

function writeLines(socket: Socket, from: number, to: number, runId: string): Promise<void> {
  let text = '';
  for (let i = from; i < to; i++) text += `line ${i} of run ${runId}\n`;
  return new Promise((resolve, reject) =>
    socket.write(text, (error) => (error ? reject(error) : resolve())),
  );
}

for (const backend of suiteBackends()) {
  const skip = backend.skip ?? missing;
  describe.skipIf(skip !== undefined)(
    `syslog-ng http() to /es/_bulk on ${backend.name}${skip ? ` (SKIPPED: ${skip})` : ''}`,
    () => {
      let dir: string | undefined;
      let syslog: ChildProcess | undefined;
      let service: ServiceProcess | undefined;
      let resources: TestResources | undefined;
      afterEach(async () => {
        if (syslog !== undefined && syslog.exitCode === null) {
          syslog.kill('SIGTERM');
          await new Promise((resolve) => syslog?.once('exit', resolve));
        }
        await service?.stop('SIGKILL');
        await resources?.dispose();
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      });

      it(`ships ${LINES} lines in batches across a kill -9 of the service: each stored once`, async () => {
        dir = mkdtempSync(join(tmpdir(), 'syslog-ng-'));
        resources = await createResources(backend.name);
        const servicePort = await freePort();
        const sourcePort = await freePort();
        const topic = `syslog-${randomUUID()}`;
        const runId = randomUUID();
        const env = { ...resources.env, CLAIM_IDLE_MS: '2000' };
        service = await spawnService(env, { port: servicePort });
        syslog = await startSyslogNg(dir, syslogNgConfig(sourcePort, servicePort, topic));
        const socket = await connectWhenListening(sourcePort);

        await writeLines(socket, 0, LINES / 2, runId);
        // Let some batches arrive, then kill the service with batches in flight.
        let before = 0;
        for (let i = 0; i < 200 && before === 0; i++) {
          await sleep(50);
          before = (await topicEvents(service.url, topic)).length;
        }
        expect(before).toBeGreaterThan(0);
        await writeLines(socket, LINES / 2, (LINES * 3) / 4, runId);
        await service.stop('SIGKILL');
        // Lines keep coming while the service is down; syslog-ng holds them and retries.
        await writeLines(socket, (LINES * 3) / 4, LINES, runId);
        await sleep(1500);
        service = await spawnService(env, { port: servicePort });
        socket.end();

        let rows = await topicEvents(service.url, topic);
        for (let i = 0; i < 600 && rows.length < LINES; i++) {
          await sleep(100);
          rows = await topicEvents(service.url, topic);
        }
        const messages = rows.map((r) => (r.payload as { message: string }).message);
        expect(new Set(messages).size).toBe(LINES);
        expect(rows).toHaveLength(LINES);
        for (let i = 0; i < LINES; i++) expect(messages).toContain(`line ${i} of run ${runId}`);
        const s: Stats = await stats(service.url);
        expect(s.unique_processed).toBe(LINES);
        expect(s.received).toBe(s.unique_processed + s.duplicate_dropped);
        // host.name is the sender as syslog-ng names it (the loopback address, resolved or not).
        expect(['127.0.0.1', 'localhost']).toContain(rows[0]?.source);
      });
    },
  );
}

/**
 * A Server-Sent Events client for tests: reads a stream with fetch and parses its frames. Like
 * EventSource, with `reconnect` it opens the stream again after the server ends it, sending the
 * last id it saw as Last-Event-ID.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface SseEvent {
  readonly id: number;
  readonly data: Record<string, unknown>;
  /** The data line as sent, before JSON.parse rounds its numbers. */
  readonly raw: string;
  /** Date.now() when the frame was read. */
  readonly receivedAt: number;
}

export interface SseStream {
  readonly events: SseEvent[];
  /** Resolves once `count` events arrived; fails after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  /** Resolves when the server ended the stream (for good, without `reconnect`). */
  readonly ended: Promise<void>;
  /** How many times the stream was opened again after the server ended it. */
  reconnects(): number;
  close(): void;
}

export async function openStream(
  url: string,
  headers: Record<string, string> = {},
  options: { reconnect?: boolean } = {},
): Promise<SseStream> {
  const controller = new AbortController();
  const events: SseEvent[] = [];
  let reconnects = 0;

  const open = async (extra: Record<string, string>) => {
    const response = await fetch(url, {
      headers: { ...headers, ...extra },
      signal: controller.signal,
    });
    if (response.status !== 200 || response.body === null) {
      throw new Error(`stream answered ${response.status}: ${await response.text()}`);
    }
    return response.body.pipeThrough(new TextDecoderStream()).getReader();
  };

  const read = async (reader: ReadableStreamDefaultReader<string>): Promise<void> => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          let id: number | undefined;
          let data: string | undefined;
          for (const line of frame.split('\n')) {
            if (line.startsWith('id: ')) id = Number(line.slice(4));
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (id !== undefined && data !== undefined) {
            events.push({
              id,
              data: JSON.parse(data) as Record<string, unknown>,
              raw: data,
              receivedAt: Date.now(),
            });
          }
        }
      }
    } catch {
      // cut off by the server, or aborted by close()
    }
  };

  const first = await open({});
  const ended = (async () => {
    await read(first);
    while (options.reconnect === true && !controller.signal.aborted) {
      const last = events.at(-1);
      try {
        const again = await open(last === undefined ? {} : { 'last-event-id': String(last.id) });
        reconnects++;
        await read(again);
      } catch {
        if (controller.signal.aborted) return;
        await sleep(100);
      }
    }
  })();
  return {
    events,
    ended,
    reconnects: () => reconnects,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`stream got ${events.length} events, expected ${count}`);
        }
        await sleep(20);
      }
      return events.slice(0, count);
    },
    close: () => controller.abort(),
  };
}

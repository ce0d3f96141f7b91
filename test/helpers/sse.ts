/** A Server-Sent Events client for tests: reads a stream with fetch and parses its frames. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface SseEvent {
  readonly id: number;
  readonly data: Record<string, unknown>;
  /** Date.now() when the frame was read. */
  readonly receivedAt: number;
}

export interface SseStream {
  readonly events: SseEvent[];
  /** Resolves once `count` events arrived; fails after `timeoutMs`. */
  waitFor(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  /** Resolves when the server ended the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

export async function openStream(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseStream> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`stream answered ${response.status}: ${await response.text()}`);
  }
  const events: SseEvent[] = [];
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const ended = (async () => {
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
              receivedAt: Date.now(),
            });
          }
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    events,
    ended,
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

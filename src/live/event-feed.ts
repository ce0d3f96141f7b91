/**
 * The live feed of newly stored events, one per API process, for the SSE stream.
 *
 * Every transaction that stores events announces at commit the range of ids it inserted
 * (PostgreSQL LISTEN/NOTIFY, in commit order, to every API process whichever worker process
 * stored them). The feed reads each announced range, drops ids it already delivered (a range may
 * cover rows of another transaction, which announces them itself), and passes the new events on
 * in that order. Every committed event is announced by its own range, so each is delivered once.
 *
 * The last RING_SIZE delivered events are kept: a subscriber reconnecting with the id of the
 * last event it saw (Last-Event-ID) resumes right after it, with no gap and no repeat. An id older
 * than the ring (or from another API process) is resumed from the table by id, without repeats;
 * there, an event of a transaction that drew lower ids but committed after the client's last one
 * can be missed, since ids follow insertion, not commit order.
 *
 * A range the database fails to read is read again in halves, down to single ids: a row it cannot
 * render is skipped (and logged, once per range), the others of its range are still delivered.
 *
 * The feed listens only while someone subscribes, so an aggregator nobody watches does no work.
 */
import { StoreUnavailableError } from '../errors.js';
import type { StoredEvent } from '../log-event.js';
import { storedEventJson } from '../stored-event-json.js';
import type { EventReader } from '../store/store.js';

/** Delivered events kept for resuming subscribers: at most this many, and this many bytes. */
const RING_SIZE = 10_000;
const RING_BYTES = 32 * 1024 * 1024;
/** Ids remembered to drop repeats; announced ranges only ever cover recent inserts. */
const DEDUP_WINDOW = 200_000;
/** Rows read per catch-up query. */
const PAGE = 1000;
/** Ids below the highest delivered that a catch-up after a lost connection looks at again. */
const RESUME_WINDOW = 10_000;
/** Live events held back for one subscriber while it resumes from the table, at most. */
const MAX_HELD = 10_000;
/** How long the feed keeps listening after its last subscriber left. */
const IDLE_STOP_MS = 30_000;

/** A stored event as the feed passes it on: serialised once, whatever the subscriber count. */
export interface FeedEvent {
  readonly id: number;
  readonly topic: string;
  /** The StoredEvent as JSON, its payload the stored text (stored-event-json.ts). */
  readonly json: string;
}

export interface FeedSubscriber {
  /** Topics wanted; undefined means all. */
  readonly topics: ReadonlySet<string> | undefined;
  /** Receives events in delivery order. */
  deliver(events: readonly FeedEvent[]): void;
  /** The feed is closing (the service stops), or the subscriber fell too far behind. */
  close(): void;
  /** True once the subscriber's connection is gone: a resume in progress stops. */
  isClosed(): boolean;
}

interface Subscription {
  readonly subscriber: FeedSubscriber;
  /** Live events held back while the subscriber catches up from the table. */
  held: FeedEvent[] | undefined;
}

/** A fixed-capacity FIFO: pushing onto a full one drops and returns the oldest item. */
class Ring<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(private readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): T | undefined {
    const slot = (this.head + this.size) % this.capacity;
    const dropped = this.size === this.capacity ? this.items[slot] : undefined;
    this.items[slot] = item;
    if (this.size === this.capacity) this.head = (this.head + 1) % this.capacity;
    else this.size++;
    return dropped;
  }

  /** The items after the last one matching `predicate`, oldest first; undefined if none does. */
  after(predicate: (item: T) => boolean): T[] | undefined {
    for (let i = this.size - 1; i >= 0; i--) {
      if (predicate(this.items[(this.head + i) % this.capacity] as T)) {
        const out: T[] = [];
        for (let j = i + 1; j < this.size; j++)
          out.push(this.items[(this.head + j) % this.capacity] as T);
        return out;
      }
    }
    return undefined;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.size = 0;
  }
}

export class EventFeed {
  private readonly ring = new Ring<FeedEvent>(RING_SIZE);
  private ringBytes = 0;
  private readonly delivered = new Set<number>();
  private readonly deliveredOrder = new Ring<number>(DEDUP_WINDOW);
  private highestDelivered = 0;
  /** The highest id stored when the feed started listening. */
  private floor = 0;
  private readonly subscriptions = new Set<Subscription>();
  private stopWatching: (() => Promise<void>) | undefined;
  private starting: Promise<void> | undefined;
  private readonly work: (() => Promise<void>)[] = [];
  private working = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly store: EventReader,
    private readonly logger: { warn(details: object, message: string): void },
  ) {}

  /**
   * Adds a subscriber. With `lastEventId` it first receives every event stored after that one,
   * then the live events; without, only events stored from now on.
   */
  async subscribe(subscriber: FeedSubscriber, lastEventId?: number): Promise<() => void> {
    if (this.closed) throw new Error('the live feed is closed');
    clearTimeout(this.idleTimer);
    // Registered before anything is awaited, so no event announced from now on passes it by; a
    // resuming subscriber holds the live events back until it has caught up.
    const subscription: Subscription = {
      subscriber,
      held: lastEventId === undefined ? undefined : [],
    };
    this.subscriptions.add(subscription);
    const unsubscribe = (): void => {
      this.subscriptions.delete(subscription);
      if (this.subscriptions.size === 0) this.scheduleIdleStop();
    };
    try {
      await this.start();
    } catch (error) {
      unsubscribe();
      throw error;
    }
    if (lastEventId === undefined) return unsubscribe;

    const sent = new Set<number>();
    try {
      const replay = this.ring.after((e) => e.id === lastEventId);
      if (replay !== undefined) {
        const wanted = replay.filter((e) => wants(subscriber, e));
        for (const e of wanted) sent.add(e.id);
        if (wanted.length > 0) subscriber.deliver(wanted);
        return unsubscribe;
      }
      // Older than the ring: read the table by id.
      const topics = subscriber.topics === undefined ? undefined : [...subscriber.topics];
      for (let after = lastEventId; this.subscriptions.has(subscription);) {
        if (subscriber.isClosed() || (subscription.held?.length ?? 0) > MAX_HELD) {
          // Gone, or so far behind that holding more would grow without bound: it reconnects.
          this.subscriptions.delete(subscription);
          subscriber.close();
          break;
        }
        const page = (await this.store.eventsAfterId(after, topics, PAGE)).map(toFeedEvent);
        for (const e of page) sent.add(e.id);
        if (page.length > 0) subscriber.deliver(page);
        if (page.length < PAGE) break;
        after = page.at(-1)?.id ?? after;
      }
    } finally {
      const held = (subscription.held ?? []).filter((e) => !sent.has(e.id));
      subscription.held = undefined;
      if (held.length > 0 && this.subscriptions.has(subscription)) subscriber.deliver(held);
    }
    return unsubscribe;
  }

  /** Starts listening for new events, if not yet; resolves once announcements arrive. */
  listen(): Promise<void> {
    return this.start();
  }

  private start(): Promise<void> {
    if (this.stopWatching !== undefined) return Promise.resolve();
    this.starting ??= this.store
      .watchInserts({
        onRange: (from, to) => this.enqueue(() => this.readRange(from, to)),
        onResumed: () => this.enqueue(() => this.catchUp()),
      })
      .then(async (stop) => {
        // Events stored before the feed listened were never live: a catch-up starts above them.
        this.floor = await this.store.lastEventId().catch(() => this.floor);
        return stop;
      })
      .then(
        (stop) => {
          this.stopWatching = stop;
          this.starting = undefined;
        },
        (error: unknown) => {
          this.starting = undefined;
          throw error;
        },
      );
    return this.starting;
  }

  private scheduleIdleStop(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.stopListening(), IDLE_STOP_MS);
    this.idleTimer.unref();
  }

  /** Stops listening; what was delivered is forgotten, since later events will not be in it. */
  private async stopListening(): Promise<void> {
    if (this.subscriptions.size > 0) return;
    const stop = this.stopWatching;
    this.stopWatching = undefined;
    this.ring.clear();
    this.ringBytes = 0;
    this.delivered.clear();
    this.deliveredOrder.clear();
    this.highestDelivered = 0;
    await stop?.();
  }

  /** Ranges are read one after another, in the order they were announced. */
  private enqueue(task: () => Promise<void>): void {
    this.work.push(task);
    if (!this.working) void this.drain();
  }

  private async drain(): Promise<void> {
    this.working = true;
    try {
      for (let task = this.work.shift(); task !== undefined; task = this.work.shift()) {
        try {
          await task();
        } catch (error) {
          this.logger.warn({ err: error }, 'live feed could not read new events');
        }
      }
    } finally {
      this.working = false;
    }
  }

  private async readRange(from: number, to: number): Promise<void> {
    if (this.subscriptions.size === 0 && this.stopWatching === undefined) return;
    const skipped: number[] = [];
    let firstError: unknown;
    const rows = await this.readReadable(from, to, (id, error) => {
      skipped.push(id);
      firstError ??= error;
    });
    this.publish(rows);
    if (skipped.length > 0) {
      // One line per announced range, however many rows it lost.
      this.logger.warn(
        {
          err: firstError,
          range: `${from}-${to}`,
          skipped: skipped.length,
          ids: skipped.slice(0, 20),
        },
        'live feed skipped events it could not read',
      );
    }
  }

  /**
   * The events of [from, to] that can be read. Should the range fail, its halves are read on
   * their own, down to single ids, so one row the database cannot render costs that row only,
   * not every event announced with it (`onSkipped` is told of each such id). A failure of the
   * whole store (it is unreachable) is not a bad row: it is thrown, and the range is lost as
   * before, since nothing could be read anyway.
   */
  private async readReadable(
    from: number,
    to: number,
    onSkipped: (id: number, error: unknown) => void,
  ): Promise<StoredEvent[]> {
    try {
      return await this.store.eventsInIdRange(from, to);
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      if (from >= to) {
        onSkipped(from, error);
        return [];
      }
      const middle = from + Math.floor((to - from) / 2);
      const low = await this.readReadable(from, middle, onSkipped);
      const high = await this.readReadable(middle + 1, to, onSkipped);
      return [...low, ...high];
    }
  }

  /** After a lost connection: re-read recent ids; what was delivered already is dropped. */
  private async catchUp(): Promise<void> {
    if (this.subscriptions.size === 0 || this.stopWatching === undefined) return;
    let after = Math.max(this.floor, this.highestDelivered - RESUME_WINDOW);
    for (;;) {
      const page = await this.store.eventsAfterId(after, undefined, PAGE);
      this.publish(page);
      if (page.length < PAGE) return;
      after = page.at(-1)?.id ?? after;
    }
  }

  private publish(rows: readonly StoredEvent[]): void {
    const fresh = rows.filter((e) => !this.delivered.has(e.id)).map(toFeedEvent);
    if (fresh.length === 0) return;
    for (const e of fresh) this.remember(e);
    for (const { subscriber, held } of this.subscriptions) {
      const wanted = fresh.filter((e) => wants(subscriber, e));
      if (wanted.length === 0) continue;
      if (held !== undefined) held.push(...wanted);
      else subscriber.deliver(wanted);
    }
  }

  private remember(e: FeedEvent): void {
    this.delivered.add(e.id);
    const forgotten = this.deliveredOrder.push(e.id);
    if (forgotten !== undefined) this.delivered.delete(forgotten);
    this.ringBytes += e.json.length - (this.ring.push(e)?.json.length ?? 0);
    while (this.ringBytes > RING_BYTES) this.ringBytes -= this.ring.shift()?.json.length ?? 0;
    if (e.id > this.highestDelivered) this.highestDelivered = e.id;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    for (const { subscriber } of this.subscriptions) subscriber.close();
    this.subscriptions.clear();
    await this.starting?.catch(() => undefined);
    await this.stopWatching?.();
    this.stopWatching = undefined;
  }
}

function toFeedEvent(e: StoredEvent): FeedEvent {
  return { id: e.id, topic: e.topic, json: storedEventJson(e) };
}

function wants(subscriber: FeedSubscriber, e: FeedEvent): boolean {
  return subscriber.topics === undefined || subscriber.topics.has(e.topic);
}

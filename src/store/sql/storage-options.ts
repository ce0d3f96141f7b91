/** The storage settings a store opener takes, and the start-up step they drive. */
import type { PartitionInterval } from './partitions.js';
import type { RetentionStore } from '../store.js';

const DAY_MS = 24 * 3600_000;

export interface StorageOptions {
  /** PARTITION_INTERVAL; `day` when absent. */
  readonly partitionInterval?: PartitionInterval;
  /** RETENTION_DAYS: partitions wholly older are not created. 0 or absent = forever. */
  readonly retentionDays?: number;
  /**
   * Called instead of failing the start when the start-up partition step fails (say, a lock not
   * granted in time): events then go to the default partition until the periodic upkeep succeeds.
   * Absent: the opener rejects.
   */
  readonly onStorageError?: (error: unknown) => void;
}

/**
 * The start-up step of every store: creates the partitions around now and splits the default
 * partition (the rows migration 0009 put there, or events written while no upkeep ran) into the
 * partitions of the recent past. Bounded (PARTITION_WINDOWS); safe from many processes.
 */
export async function prepareStorage(
  store: Pick<RetentionStore, 'maintainPartitions'>,
  options: StorageOptions,
  now = new Date(),
): Promise<string[]> {
  const days = options.retentionDays ?? 0;
  try {
    return await store.maintainPartitions(now, {
      split: true,
      notBefore: days > 0 ? new Date(now.getTime() - days * DAY_MS) : undefined,
    });
  } catch (error) {
    if (options.onStorageError === undefined) throw error;
    options.onStorageError(error);
    return [];
  }
}

/**
 * The extensions every PGlite database of this service loads (PGlite has none but those it is
 * given at creation): `pg_trgm` for the trigram index over the search granules' words (migration
 * 0008), `btree_gin` for their event times in the same index (migration 0012).
 */
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';

export const PGLITE_EXTENSIONS = { btree_gin, pg_trgm };

import type { Migration } from 'kysely';
import * as m0001 from './0001_foundation.js';
import * as m0002 from './0002_lti_identity.js';

/**
 * Every migration, in order. Migrations are frozen once landed: they use `Kysely<any>` and never import
 * application code, so later changes to the code cannot change what an old migration did.
 * Add new ones at the end with the next number.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_lti_identity': m0002,
};

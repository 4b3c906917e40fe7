import type { Generated } from 'kysely';
import type { LtiTables } from '../lti/tables.js';

/**
 * The whole database as Kysely sees it. Each capability declares its own tables in its folder
 * (`src/<capability>/tables.ts`) and they are joined here.
 */
export interface Database extends FoundationTables, LtiTables {}

export interface FoundationTables {
  app_meta: AppMetaTable;
}

export interface AppMetaTable {
  key: string;
  value: unknown;
  updated_at: Generated<Date>;
}

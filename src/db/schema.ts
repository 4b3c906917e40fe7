import type { Generated } from 'kysely';
import type { CatalogTables } from '../catalog/tables.js';
import type { CertificatesTables } from '../certificates/tables.js';
import type { DigestTables } from '../digest/tables.js';
import type { FileNumbersTables } from '../file-numbers/tables.js';
import type { LmsTables } from '../lms/tables.js';
import type { LtiTables } from '../lti/tables.js';
import type { LtiServicesTables } from '../lti-services/tables.js';
import type { PortalTables } from '../portal/tables.js';
import type { PrivacyTables } from '../privacy/tables.js';
import type { RegroupementTables } from '../regroupement/tables.js';
import type { TrackingTables } from '../tracking/tables.js';

/**
 * The whole database as Kysely sees it. Each capability declares its own tables in its folder
 * (`src/<capability>/tables.ts`) and they are joined here.
 */
export interface Database
  extends FoundationTables,
    LtiTables,
    CatalogTables,
    CertificatesTables,
    LtiServicesTables,
    PortalTables,
    TrackingTables,
    LmsTables,
    FileNumbersTables,
    PrivacyTables,
    DigestTables,
    RegroupementTables {}

export interface FoundationTables {
  app_meta: AppMetaTable;
}

export interface AppMetaTable {
  key: string;
  value: unknown;
  updated_at: Generated<Date>;
}

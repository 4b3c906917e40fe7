import type { Migration } from 'kysely';
import * as m0001 from './0001_foundation.js';
import * as m0002 from './0002_lti_identity.js';
import * as m0003 from './0003_catalog.js';
import * as m0004 from './0004_tracking.js';
import * as m0005 from './0005_certificates.js';
import * as m0006 from './0006_portal.js';
import * as m0007 from './0007_lti_services.js';
import * as m0008 from './0008_tracking_inbox.js';
import * as m0009 from './0009_lms_time.js';
import * as m0010 from './0010_fund_file_numbers.js';
import * as m0011 from './0011_tracking_journal.js';
import * as m0012 from './0012_tracking_journal_quarantine.js';
import * as m0013 from './0013_tracking_beats_v2.js';
import * as m0014 from './0014_programme.js';
import * as m0015 from './0015_lms_lrs.js';
import * as m0016 from './0016_score_outbox_holds.js';

/**
 * Every migration, in order. Migrations are frozen once landed: they use `Kysely<any>` and never import
 * application code, so later changes to the code cannot change what an old migration did.
 * Add new ones at the end with the next number.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_lti_identity': m0002,
  '0003_catalog': m0003,
  '0004_tracking': m0004,
  '0005_certificates': m0005,
  '0006_portal': m0006,
  '0007_lti_services': m0007,
  '0008_tracking_inbox': m0008,
  '0009_lms_time': m0009,
  '0010_fund_file_numbers': m0010,
  '0011_tracking_journal': m0011,
  '0012_tracking_journal_quarantine': m0012,
  '0013_tracking_beats_v2': m0013,
  '0015_lms_lrs': m0015,
  '0016_score_outbox_holds': m0016,
  '0014_programme': m0014,
};

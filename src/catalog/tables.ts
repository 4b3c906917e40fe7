import type { Generated, JSONColumnType } from 'kysely';

/** jsonb columns: read parsed, written as a JSON string (`JSON.stringify`). */

/** Tables of migration 0003_catalog. */
export interface CatalogTables {
  funds: FundTable;
  branches: BranchTable;
  tracks: TrackTable;
  themes: ThemeTable;
  modules: ModuleTable;
  module_versions: ModuleVersionTable;
  learner_profiles: LearnerProfileTable;
  module_progress: ModuleProgressTable;
}

export interface FundTable {
  slug: string;
  name: string;
  historical_name: string | null;
  sectors: JSONColumnType<string[]>;
  position: number;
  version: number;
  active: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface BranchTable {
  idcc: string;
  name: string;
  /** Migration 0014: the branch's OPCA in 2017 when it was not its fund's; null otherwise. */
  historical_name: Generated<string | null>;
  fund_slug: string;
  version: number;
  active: Generated<boolean>;
  updated_at: Generated<Date>;
}

export interface TrackTable {
  id: string;
  title: string;
  version: number;
  /** Migration 0014: the planned duration of a learner's programme (minutes), and the weeks. */
  planned_minutes: number | null;
  weeks: JSONColumnType<{ week: number; title: string; themes: string[] }[] | null, string | null, string | null>;
  updated_at: Generated<Date>;
}

export type Trunk = 'common' | 'sector';

export interface ThemeTable {
  track_id: string;
  slug: string;
  title: string;
  trunk: Trunk;
  position: number;
  /** Migration 0014: the week of the programme, and how many modules the theme holds per fund. */
  week: number | null;
  module_count: Generated<number>;
}

export interface ModuleTable {
  id: string;
  track_id: string;
  theme_slug: string;
  fund_slug: string | null;
  branches: JSONColumnType<string[], string | undefined, string>;
  title: string;
  nominal_minutes: number;
  current_version: number;
  /** Migration 0014: the module's place in its theme (module.yaml 1, module-N.yaml N). */
  position: Generated<number>;
  active: Generated<boolean>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ModuleVersionTable {
  module_id: string;
  version: number;
  /** The validated module package (see content/README.md), as JSON. */
  manifest: JSONColumnType<object>;
  content_hash: string;
  source_path: string;
  imported_at: Generated<Date>;
}

export type Civility = 'madame' | 'monsieur' | 'non_precise';
export type HeadcountBand = '0-9' | '10-49' | '50-249' | '250+';
export type ProfileAuthorRole = 'learner' | 'course_team' | 'staff';

export interface LearnerProfileTable {
  learner_id: string;
  civility: Civility;
  family_name: string;
  given_name: string;
  company_name: string;
  company_siret: string;
  headcount_band: HeadcountBand;
  idcc: string | null;
  fund_slug: string;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  updated_by: string | null;
  updated_by_role: ProfileAuthorRole;
}

export interface QuizAnswersRecord {
  answers: number[];
  correct: number;
  total: number;
  answeredAt: string;
}

export interface ModuleProgressTable {
  id: Generated<string>;
  learner_id: string;
  course_id: string;
  module_id: string;
  module_version: number;
  resource_link_id: string | null;
  fund_slug: string | null;
  blocks_seen: JSONColumnType<Record<string, string>, string | undefined, string>;
  quiz_answers: JSONColumnType<QuizAnswersRecord | null, string | null, string | null>;
  started_at: Generated<Date>;
  updated_at: Generated<Date>;
  completed_at: Date | null;
}

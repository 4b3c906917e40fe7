import type { Generated } from 'kysely';

/** Tables of migration 0010_fund_file_numbers. */
export interface FileNumbersTables {
  fund_file_numbers: FundFileNumberTable;
  fund_file_number_history: FundFileNumberHistoryTable;
  fund_company_names: FundCompanyNameTable;
}

/** Migration 0017: company names a fund confirmed for a SIRET in a course session. */
export interface FundCompanyNameTable {
  fund_slug: string;
  course_id: string;
  company_siret: string;
  name_key: string;
  name: string;
  confirmed_by_user_id: string | null;
  confirmed_by_username: string;
  confirmed_at: Generated<Date>;
}

export interface FundFileNumberTable {
  fund_slug: string;
  course_id: string;
  /** 14 digits, no spaces. */
  company_siret: string;
  file_number: string;
  set_by_user_id: string | null;
  set_by_username: string;
  set_at: Generated<Date>;
}

export interface FundFileNumberHistoryTable {
  id: Generated<string>;
  fund_slug: string;
  course_id: string;
  company_siret: string;
  previous_number: string | null;
  /** null: the number was cleared. */
  file_number: string | null;
  set_by_user_id: string | null;
  set_by_username: string;
  via: string;
  at: Generated<Date>;
}

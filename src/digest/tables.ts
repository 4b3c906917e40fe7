import type { Generated } from 'kysely';

/** Tables of migration 0019_fund_digests. */
export interface DigestTables {
  digest_subscriptions: DigestSubscriptionTable;
  digests_sent: DigestSentTable;
}

export interface DigestSubscriptionTable {
  user_id: string;
  subscribed_at: Generated<Date>;
}

export type DigestStatus = 'sending' | 'sent' | 'failed';

export interface DigestSentTable {
  user_id: string;
  /** 'YYYY-MM-DD', the Monday (Paris) of the ISO week covered. */
  week_start: string;
  status: DigestStatus;
  claimed_at: Generated<Date>;
  sent_at: Date | null;
  recipient: string;
  fund_slug: string;
  message_id: string | null;
  error: string | null;
}

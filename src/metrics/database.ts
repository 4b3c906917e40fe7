import { sql } from 'kysely';
import { Gauge, type Registry } from 'prom-client';
import type { Db } from '../db/index.js';

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/**
 * Gauges read at scrape time, from this app's database (one registry per app, so that several apps in one
 * process — tests — never share them). Every query uses an index: the outbox's partial indexes on its
 * pending and failed rows, the journal's and inbox's `received_at`.
 */
export function registerDatabaseGauges(registry: Registry, db: Db, poolStats: (() => PoolStats) | undefined): void {
  new Gauge({
    name: 'emargement_score_outbox_depth',
    help: 'AGS scores waiting in the outbox: pending (due or waiting for a retry) and failed (given up, see `outbox list`)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql<{ pending: number; retrying: number; failed: number; oldest: Date | null }>`
        select
          (select count(*) from lti_score_outbox where status = 'pending') as pending,
          (select count(*) from lti_score_outbox where status = 'pending' and attempts > 0) as retrying,
          (select count(*) from lti_score_outbox where status = 'failed') as failed
      `.execute(db);
      const r = rows.rows[0];
      this.set({ status: 'pending' }, Number(r?.pending ?? 0));
      this.set({ status: 'retrying' }, Number(r?.retrying ?? 0));
      this.set({ status: 'failed' }, Number(r?.failed ?? 0));
    },
  });

  new Gauge({
    name: 'emargement_crediting_lag_seconds',
    help: 'Age of the oldest acknowledged heartbeat not yet credited (journal or inbox); 0 when none waits',
    registers: [registry],
    async collect() {
      const rows = await sql<{ oldest: Date | null }>`
        select least(
          (select min(received_at) from tracking_journal),
          (select min(received_at) from tracking_inbox)
        ) as oldest
      `.execute(db);
      const oldest = rows.rows[0]?.oldest;
      this.set(oldest ? Math.max(0, (Date.now() - new Date(oldest).getTime()) / 1000) : 0);
    },
  });

  new Gauge({
    name: 'emargement_crediting_backlog_items',
    help: 'Acknowledged heartbeat items waiting to be credited (journal items + inbox rows)',
    registers: [registry],
    async collect() {
      const rows = await sql<{ n: number }>`
        select coalesce((select sum(item_count) from tracking_journal), 0)
             + (select count(*) from tracking_inbox) as n
      `.execute(db);
      this.set(Number(rows.rows[0]?.n ?? 0));
    },
  });

  if (poolStats) {
    new Gauge({
      name: 'emargement_db_pool_connections',
      help: 'PostgreSQL pool of this instance: total, idle and max connections, and queries waiting for one',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const s = poolStats();
        this.set({ state: 'total' }, s.total);
        this.set({ state: 'idle' }, s.idle);
        this.set({ state: 'in_use' }, s.total - s.idle);
        this.set({ state: 'waiting' }, s.waiting);
        this.set({ state: 'max' }, s.max);
      },
    });
  }
}

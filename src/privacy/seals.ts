import { signWithCertificateKey, verifyCertificateSignature } from '../certificates/index.js';
import type { Db } from '../db/index.js';
import { type EvidenceRecord, evidenceHash, redactionStatement } from '../tracking/index.js';
import * as repo from './repository.js';
import { type PrivacyDeps, reducedTabData, reducedUserAgent } from './rules.js';

/** Evidence under the privacy rules: redaction of recorded tab data under signature, and the audit of the purge's seals. */

export async function sign(deps: PrivacyDeps, text: string) {
  return signWithCertificateKey(deps.db, deps.appSecret, text);
}

export function recordOf(e: repo.TabEventRow): EvidenceRecord {
  return {
    learnerId: e.learner_id,
    index: e.chain_index,
    kind: e.kind,
    courseId: e.course_id,
    moduleId: e.module_id,
    tabId: e.tab_id,
    seq: e.seq,
    at: new Date(e.server_time.getTime()).toISOString(),
    clientTime: e.client_time,
    reason: e.reason,
    data: e.data as EvidenceRecord['data'],
  };
}

// ───────────────────────────── redaction of evidence ─────────────────────────────

export class EvidenceIntegrityError extends Error {}

/**
 * Reduces the personal fields of the `tab` records of these tabs, each under a signed redaction that binds
 * its place in the chain to its reduced content (the chain keeps its hashes, so heads and digests stay).
 * A record is only reduced if it is intact now: its hash still matches, or its earlier redaction verifies.
 */
export async function redactTabs(
  deps: PrivacyDeps,
  trx: repo.Trx,
  learnerId: string,
  tabs: ReadonlyArray<{ id: string; user_agent: string | null; ip_prefix: string | null }>,
  rule: 'user-agent-30d' | 'erasure',
  at: Date,
): Promise<number> {
  let reduced = 0;
  const events = new Map(
    (
      await repo.tabEvents(
        trx,
        learnerId,
        tabs.map((t) => t.id),
      )
    ).map((e) => [e.tab_id, e]),
  );
  for (const tab of tabs) {
    const event = events.get(tab.id);
    if (event) {
      const record = recordOf(event);
      await assertIntact(trx, event, record);
      const data = reducedTabData(event.data as Record<string, unknown>, rule);
      if (data) {
        const redactedAt = at.toISOString();
        const next = { ...record, data: data as EvidenceRecord['data'] };
        const statement = redactionStatement({
          learnerId,
          index: record.index,
          prevHash: event.prev_hash,
          hash: event.hash,
          record: next,
          rule,
          redactedAt,
        });
        const { kid, signature } = await sign(deps, statement);
        await repo.saveRedaction(trx, { learnerId, index: record.index, rule, redactedAt: at, kid, signature, data });
        reduced++;
      }
    }
    await repo.updateTabContext(trx, tab.id, {
      user_agent: reducedUserAgent(tab.user_agent),
      ...(rule === 'erasure' ? { ip_prefix: null } : {}),
    });
  }
  return reduced;
}

async function assertIntact(trx: repo.Trx, event: repo.TabEventRow, record: EvidenceRecord) {
  if (evidenceHash(event.prev_hash, record) === event.hash) return;
  const earlier = await repo.redactionOf(trx, event.learner_id, event.chain_index);
  if (earlier) {
    const key = await trx
      .selectFrom('certificate_signing_keys')
      .select('public_jwk')
      .where('kid', '=', earlier.kid)
      .executeTakeFirst();
    const statement = redactionStatement({
      learnerId: event.learner_id,
      index: event.chain_index,
      prevHash: event.prev_hash,
      hash: event.hash,
      record,
      rule: earlier.rule,
      redactedAt: earlier.redacted_at.toISOString(),
    });
    if (key && verifyCertificateSignature(key.public_jwk, statement, earlier.signature)) return;
  }
  throw new EvidenceIntegrityError(
    `evidence record ${event.chain_index} of learner ${event.learner_id} does not match its hash: not redacted (run time verify)`,
  );
}

// ───────────────────────────── audit of the seals ─────────────────────────────

/**
 * Rechecks what the purge signed: each sealed chain (signature with a published key, the statement matching
 * its columns, no record of it left) and each day's digest reseals (signatures, each `before` being the
 * previous `after`, the last `after` being the digest kept now). Returns the problems found (none: []).
 */
export async function verifySeals(db: Db): Promise<string[]> {
  const problems: string[] = [];
  const keys = new Map(
    (await db.selectFrom('certificate_signing_keys').select(['kid', 'public_jwk']).execute()).map((k) => [
      k.kid,
      k.public_jwk,
    ]),
  );
  const signed = (kid: string, text: string, signature: string) => {
    const jwk = keys.get(kid);
    return jwk !== undefined && verifyCertificateSignature(jwk, text, signature);
  };
  for (const seal of await db.selectFrom('privacy_purged_chains').selectAll().orderBy('purged_at').execute()) {
    const statement = JSON.parse(seal.statement) as { learnerId?: string; chainHead?: string; chainLength?: number };
    if (!signed(seal.kid, seal.statement, seal.signature)) {
      problems.push(`sealed chain of ${seal.learner_id}: signature does not verify`);
    }
    if (
      statement.learnerId !== seal.learner_id ||
      statement.chainHead !== seal.chain_head ||
      statement.chainLength !== Number(seal.chain_length)
    ) {
      problems.push(`sealed chain of ${seal.learner_id}: statement differs from the seal`);
    }
    const left = await db
      .selectFrom('tracking_events')
      .select('id')
      .where('learner_id', '=', seal.learner_id)
      .limit(1)
      .execute();
    if (left.length > 0) problems.push(`sealed chain of ${seal.learner_id}: records are still stored`);
  }
  const reseals = await db
    .selectFrom('privacy_digest_reseals')
    .selectAll()
    .orderBy('day')
    .orderBy('resealed_at')
    .execute();
  const byDay = new Map<string, typeof reseals>();
  for (const r of reseals) byDay.set(r.day, [...(byDay.get(r.day) ?? []), r]);
  for (const [day, rows] of byDay) {
    let previousAfter: string | null = null;
    for (const r of rows) {
      const s = JSON.parse(r.statement) as { day?: string; before?: string; after?: string };
      if (!signed(r.kid, r.statement, r.signature)) problems.push(`digest reseal of ${day}: signature does not verify`);
      if (s.day !== day) problems.push(`digest reseal of ${day}: statement names another day`);
      if (previousAfter !== null && s.before !== previousAfter) {
        problems.push(`digest reseal of ${day}: does not follow the previous reseal`);
      }
      previousAfter = s.after ?? null;
    }
    const kept = await db.selectFrom('tracking_digests').select('digest').where('day', '=', day).executeTakeFirst();
    if (kept && kept.digest !== previousAfter) problems.push(`digest of ${day}: differs from its last reseal`);
  }
  return problems;
}

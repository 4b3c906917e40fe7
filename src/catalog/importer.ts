import { type Insertable, sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/index.js';
import { type ContentProblem, contentFingerprint, formatProblem, loadContent } from './content.js';
import { COMMON_FUND, type ContentSet } from './model.js';
import { forgetCatalogSnapshot } from './repository/snapshot.js';

/**
 * Loads a validated content set into the database. Versions only move forward: a module whose content
 * changed gets a new row in module_versions and learners who started the old version keep it (their
 * progress row names the version). Content that changed without a version bump, or a version older than
 * the imported one, is refused: the whole import is one transaction, all or nothing.
 */

const SOURCES_KEY = 'catalog.sources';
const FINGERPRINT_KEY = 'catalog.fingerprint';
export const GLOSSARY_KEY = 'catalog.glossary';
/** Any constant shared by every importer: serialises concurrent imports (two instances starting at once). */
const IMPORT_LOCK = 4_242_001;

interface Sources {
  funds?: { version: number; hash: string };
  tracks?: Record<string, { version: number; hash: string }>;
}

export interface ImportReport {
  funds: { from: number | null; to: number; applied: boolean };
  tracks: { id: string; from: number | null; to: number; applied: boolean }[];
  added: { id: string; version: number }[];
  updated: { id: string; from: number; to: number }[];
  unchanged: number;
  deactivated: string[];
}

/** A conflict between the files and what the database already holds; `file` is relative to the content dir. */
export interface ImportProblem {
  file: string;
  message: string;
}

export class ContentImportError extends Error {
  constructor(readonly problems: ImportProblem[]) {
    super(`content import refused: ${problems.map((p) => `${p.file}: ${p.message}`).join('; ')}`);
    this.name = 'ContentImportError';
  }
}

export class ContentInvalidError extends Error {
  constructor(readonly problems: ContentProblem[]) {
    super(`content has ${problems.filter((p) => p.severity === 'error').length} error(s)`);
    this.name = 'ContentInvalidError';
  }
}

type Tx = Transaction<Database>;

async function readMeta<T>(tx: Tx | Db, key: string): Promise<T | null> {
  const r = await tx.selectFrom('app_meta').select('value').where('key', '=', key).executeTakeFirst();
  return r ? (r.value as T) : null;
}

async function writeMeta(tx: Tx | Db, key: string, value: unknown): Promise<void> {
  await tx
    .insertInto('app_meta')
    .values({ key, value: JSON.stringify(value) })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: JSON.stringify(value), updated_at: sql`now()` }))
    .execute();
}

export async function importContent(
  db: Db,
  content: ContentSet,
  options: { fingerprint?: string } = {},
): Promise<ImportReport> {
  const imported = await db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(${IMPORT_LOCK})`.execute(tx);
    const problems: ImportProblem[] = [];
    const sources = (await readMeta<Sources>(tx, SOURCES_KEY)) ?? {};
    const report: ImportReport = {
      funds: { from: sources.funds?.version ?? null, to: content.funds.version, applied: false },
      tracks: [],
      added: [],
      updated: [],
      unchanged: 0,
      deactivated: [],
    };

    // Funds and branches.
    const fundsDecision = decide('funds.json', sources.funds, content.funds.version, content.fundsHash, problems);
    if (fundsDecision === 'apply') {
      const slugs = content.funds.funds.map((f) => f.slug);
      // Batched upserts: start-up imports run on a cold embedded database and must stay quick.
      await tx
        .insertInto('funds')
        .values(
          content.funds.funds.map((f, position) => ({
            slug: f.slug,
            name: f.name,
            historical_name: f.historicalName,
            sectors: JSON.stringify(f.sectors),
            position,
            version: content.funds.version,
            active: true,
          })),
        )
        .onConflict((oc) =>
          oc.column('slug').doUpdateSet((eb) => ({
            name: eb.ref('excluded.name'),
            historical_name: eb.ref('excluded.historical_name'),
            sectors: eb.ref('excluded.sectors'),
            position: eb.ref('excluded.position'),
            version: eb.ref('excluded.version'),
            active: true,
            updated_at: sql`now()`,
          })),
        )
        .execute();
      await tx
        .updateTable('funds')
        .set({ active: false, updated_at: sql`now()` })
        .where('slug', 'not in', slugs)
        .execute();
      const branchRows = content.funds.funds.flatMap((f) =>
        f.branches.map((b) => ({
          idcc: b.idcc,
          name: b.name,
          historical_name: b.historicalName ?? null,
          fund_slug: f.slug,
          version: content.funds.version,
          active: true,
        })),
      );
      const idccs = branchRows.map((b) => b.idcc);
      if (branchRows.length > 0) {
        await tx
          .insertInto('branches')
          .values(branchRows)
          .onConflict((oc) =>
            oc.column('idcc').doUpdateSet((eb) => ({
              name: eb.ref('excluded.name'),
              historical_name: eb.ref('excluded.historical_name'),
              fund_slug: eb.ref('excluded.fund_slug'),
              version: eb.ref('excluded.version'),
              active: true,
              updated_at: sql`now()`,
            })),
          )
          .execute();
      }
      let stale = tx.updateTable('branches').set({ active: false, updated_at: sql`now()` });
      if (idccs.length > 0) stale = stale.where('idcc', 'not in', idccs);
      await stale.execute();
      report.funds.applied = true;
    }

    // Tracks and themes.
    const trackSources = { ...(sources.tracks ?? {}) };
    for (const { track, hash, path } of content.tracks) {
      const decision = decide(path, trackSources[track.id], track.version, hash, problems);
      report.tracks.push({
        id: track.id,
        from: trackSources[track.id]?.version ?? null,
        to: track.version,
        applied: decision === 'apply',
      });
      if (decision !== 'apply') continue;
      await tx
        .insertInto('tracks')
        .values({
          id: track.id,
          title: track.title,
          version: track.version,
          planned_minutes: track.plannedMinutes,
          weeks: JSON.stringify(track.weeks),
        })
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({
            title: track.title,
            version: track.version,
            planned_minutes: track.plannedMinutes,
            weeks: JSON.stringify(track.weeks),
            updated_at: sql`now()`,
          }),
        )
        .execute();
      await tx
        .insertInto('themes')
        .values(
          track.themes.map((t) => ({
            track_id: track.id,
            slug: t.slug,
            title: t.title,
            trunk: t.trunk,
            position: t.order,
            week: t.week,
            module_count: t.modules,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['track_id', 'slug']).doUpdateSet((eb) => ({
            title: eb.ref('excluded.title'),
            trunk: eb.ref('excluded.trunk'),
            position: eb.ref('excluded.position'),
            week: eb.ref('excluded.week'),
            module_count: eb.ref('excluded.module_count'),
          })),
        )
        .execute();
      trackSources[track.id] = { version: track.version, hash };
    }

    // Modules.
    const existing = new Map(
      (
        await tx
          .selectFrom('modules')
          .innerJoin('module_versions', (j) =>
            j
              .onRef('module_versions.module_id', '=', 'modules.id')
              .onRef('module_versions.version', '=', 'modules.current_version'),
          )
          .select([
            'modules.id',
            'modules.current_version',
            'modules.active',
            'modules.position',
            'module_versions.content_hash',
          ])
          .execute()
      ).map((r) => [r.id, r]),
    );
    const newModules: Insertable<Database['modules']>[] = [];
    const newVersions: Insertable<Database['module_versions']>[] = [];
    for (const { manifest, track, hash, path, position } of content.modules) {
      const current = existing.get(manifest.id);
      const values = {
        track_id: track,
        theme_slug: manifest.theme,
        fund_slug: manifest.fund === COMMON_FUND ? null : manifest.fund,
        branches: JSON.stringify(manifest.branches),
        title: manifest.title,
        nominal_minutes: manifest.nominalMinutes,
        current_version: manifest.version,
        position,
        active: true,
      };
      if (current && manifest.version === current.current_version) {
        if (hash !== current.content_hash) {
          problems.push({
            file: path,
            message: `module "${manifest.id}" changed but its version is still ${manifest.version}: bump "version" so learners who started it keep the old content`,
          });
        } else {
          report.unchanged++;
          // A file moved to another position (module.yaml → module-2.yaml) keeps its id and content.
          if (!current.active || current.position !== position)
            await tx
              .updateTable('modules')
              .set({ active: true, position, updated_at: sql`now()` })
              .where('id', '=', manifest.id)
              .execute();
        }
        continue;
      }
      if (current && manifest.version < current.current_version) {
        problems.push({
          file: path,
          message: `module "${manifest.id}" has version ${manifest.version}, older than the imported version ${current.current_version}`,
        });
        continue;
      }
      // current_version is always the highest imported version, so a higher one is new.
      if (current) {
        await tx
          .updateTable('modules')
          .set({ ...values, updated_at: sql`now()` })
          .where('id', '=', manifest.id)
          .execute();
        report.updated.push({ id: manifest.id, from: current.current_version, to: manifest.version });
      } else {
        newModules.push({ id: manifest.id, ...values });
        report.added.push({ id: manifest.id, version: manifest.version });
      }
      newVersions.push({
        module_id: manifest.id,
        version: manifest.version,
        manifest: JSON.stringify(manifest),
        content_hash: hash,
        source_path: path,
      });
    }
    if (newModules.length > 0) await tx.insertInto('modules').values(newModules).execute();
    if (newVersions.length > 0) await tx.insertInto('module_versions').values(newVersions).execute();
    // A module no longer on disk is hidden from routing, never deleted: progress rows point at it.
    const onDisk = new Set(content.modules.map((m) => m.manifest.id));
    const gone = [...existing.values()].filter((m) => m.active && !onDisk.has(m.id)).map((m) => m.id);
    if (gone.length > 0) {
      await tx.updateTable('modules').set({ active: false, updated_at: sql`now()` }).where('id', 'in', gone).execute();
      report.deactivated = gone;
    }

    if (problems.length > 0) throw new ContentImportError(problems);
    await writeMeta(tx, SOURCES_KEY, {
      funds: fundsDecision === 'apply' ? { version: content.funds.version, hash: content.fundsHash } : sources.funds,
      tracks: trackSources,
    } satisfies Sources);
    // The glossary is reference text, not versioned evidence: the latest one is what pages show.
    await writeMeta(tx, GLOSSARY_KEY, content.glossary);
    if (options.fingerprint) await writeMeta(tx, FINGERPRINT_KEY, options.fingerprint);
    return report;
  });
  // This process sees its own import at once; other instances see it through the catalogue stamp.
  forgetCatalogSnapshot(db);
  return imported;
}

function decide(
  label: string,
  previous: { version: number; hash: string } | undefined,
  version: number,
  hash: string,
  problems: ImportProblem[],
): 'apply' | 'same' | 'refused' {
  if (!previous || version > previous.version) return 'apply';
  if (version < previous.version) {
    problems.push({
      file: label,
      message: `version ${version} is older than the imported version ${previous.version}`,
    });
    return 'refused';
  }
  if (hash !== previous.hash) {
    problems.push({ file: label, message: `content changed but "version" is still ${version}: bump it` });
    return 'refused';
  }
  return 'same';
}

export function summarizeImport(r: ImportReport): string {
  const parts = [
    r.funds.applied ? `funds v${r.funds.from ?? '–'}→v${r.funds.to}` : `funds v${r.funds.to} unchanged`,
    ...r.tracks.map((t) =>
      t.applied ? `track ${t.id} v${t.from ?? '–'}→v${t.to}` : `track ${t.id} v${t.to} unchanged`,
    ),
    `${r.added.length} module(s) added`,
    `${r.updated.length} updated`,
    `${r.unchanged} unchanged`,
  ];
  if (r.deactivated.length > 0)
    parts.push(`${r.deactivated.length} no longer on disk (hidden): ${r.deactivated.join(', ')}`);
  return parts.join(', ');
}

/**
 * At start: import the content directory when it changed since the last import (a fingerprint of the
 * files makes the common case a few file reads). Problems are logged, never fatal: the service keeps
 * serving what the database holds.
 */
export async function ensureContentImported(
  db: Db,
  contentDir: string,
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void },
): Promise<'unchanged' | 'imported' | 'failed'> {
  let fingerprint: string;
  try {
    fingerprint = await contentFingerprint(contentDir);
  } catch {
    log.warn({ contentDir }, 'content directory cannot be read: no content imported');
    return 'failed';
  }
  let previous: string | null;
  try {
    previous = await readMeta<string>(db, FINGERPRINT_KEY);
  } catch (err) {
    log.error({ err }, 'catalog tables cannot be read (migrations not applied?): no content imported');
    return 'failed';
  }
  if (previous === fingerprint) return 'unchanged';
  const loaded = await loadContent(contentDir);
  if (!loaded.content) {
    const errors = loaded.problems.filter((p) => p.severity === 'error');
    log.error(
      { count: errors.length, problems: errors.slice(0, 20).map((p) => formatProblem(p)) },
      'content is invalid: not imported (run `npm run content -- check`)',
    );
    return 'failed';
  }
  const editorial = loaded.problems.filter((p) => p.editorial);
  if (editorial.length > 0) {
    // Loadable content that does not meet every rule yet (content being rewritten): served, and said.
    log.warn(
      { count: editorial.length, problems: editorial.slice(0, 20).map((p) => formatProblem(p)) },
      'content imported with editorial errors (run `npm run content -- check`)',
    );
  }
  try {
    const report = await importContent(db, loaded.content, { fingerprint });
    log.info({ summary: summarizeImport(report) }, 'content imported');
    return 'imported';
  } catch (error) {
    if (error instanceof ContentImportError) {
      log.error({ problems: error.problems.map((p) => `${p.file}: ${p.message}`) }, 'content import refused');
      return 'failed';
    }
    throw error;
  }
}

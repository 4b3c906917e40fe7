import {
  type BranchDef,
  COMMON_FUND,
  type FundDef,
  type FundsFile,
  type ThemeDef,
  type TrackDef,
  type WeekDef,
} from '../model.js';
import { FundsSchema, TrackSchema } from './schemas.js';
import { describe, isObject, type Path, type SourceFile } from './source.js';
import { Validation } from './validate.js';

/**
 * funds.json and <track>/track.json: the schema pass, then the rules between values (unique slugs and
 * IDCC codes, a track named after its directory, weeks numbered in order, every theme in one week).
 */

export function readFunds(src: SourceFile): FundsFile | null {
  if (!src.ok) return null;
  const v = new Validation(src);
  const data = src.data;
  // An IDCC written as a number says all there is to say about its branch.
  const numberIdcc = new Set<string>();
  if (isObject(data) && Array.isArray(data.funds)) {
    data.funds.forEach((f, i) => {
      if (!isObject(f) || !Array.isArray(f.branches)) return;
      f.branches.forEach((b, j) => {
        if (isObject(b) && typeof b.idcc === 'number') numberIdcc.add(JSON.stringify(['funds', i, 'branches', j]));
      });
    });
  }
  v.check(FundsSchema, data, [], (path) => {
    if (path.length < 5 || !numberIdcc.has(JSON.stringify(path.slice(0, 4)))) return false;
    const key = path[4] as string;
    return key !== 'idcc' && ['idcc', 'name', 'historicalName'].includes(key);
  });
  if (!isObject(data)) return null;

  const funds: FundDef[] = [];
  const slugs = new Set<string>();
  const idccs = new Map<string, string>();
  v.list(data, 'funds').forEach((item, i) => {
    const p: Path = ['funds', i];
    if (!isObject(item)) return;
    const slug = v.text(item, 'slug', p);
    if (slug === COMMON_FUND) src.error([...p, 'slug'], '"common" is reserved for the common trunk');
    else if (slug !== null && slugs.has(slug)) src.error([...p, 'slug'], `duplicate fund slug "${slug}"`);
    if (slug !== null) slugs.add(slug);
    const name = v.text(item, 'name', p);
    const historicalName = v.text(item, 'historicalName', p);
    const sectors = v.list(item, 'sectors').map(String);
    const branches: BranchDef[] = [];
    v.list(item, 'branches').forEach((b, j) => {
      const bp: Path = [...p, 'branches', j];
      if (!isObject(b) || typeof b.idcc === 'number') return;
      const idcc = v.text(b, 'idcc', bp);
      const bname = v.text(b, 'name', bp);
      if (idcc !== null) {
        const other = idccs.get(idcc);
        if (other !== undefined) {
          src.error(
            [...bp, 'idcc'],
            `IDCC ${idcc} is already listed under fund "${other}": a branch belongs to one fund`,
          );
        }
        idccs.set(idcc, slug ?? '?');
      }
      const bhist = v.text(b, 'historicalName', bp);
      // Only when present: a funds.json without it keeps the content hash it had.
      if (idcc !== null && bname !== null)
        branches.push({ idcc, name: bname, ...(bhist ? { historicalName: bhist } : {}) });
    });
    // `regroupement`: only kept when true.
    const regroupement = item.regroupement === true ? { regroupement: true as const } : {};
    if (slug !== null && name !== null) funds.push({ slug, name, historicalName, sectors, branches, ...regroupement });
  });
  const version = v.integer(data, 'version', []);
  if (version === null) return null;
  return { version, funds };
}

/** Theme slugs named by each track.json, even in an invalid entry: a module naming one is not reported again. */
export const namedThemes = new WeakMap<SourceFile, Set<string>>();

export function readTrack(src: SourceFile, dirName: string): TrackDef | null {
  if (!src.ok) return null;
  const v = new Validation(src);
  const root = src.data;
  v.check(TrackSchema, root);
  if (!isObject(root)) return null;
  const id = v.text(root, 'id', []);
  if (id !== null && id !== dirName) src.error(['id'], `"${id}" must be the name of its directory ("${dirName}")`);
  const title = v.text(root, 'title', []);
  const version = v.integer(root, 'version', []);
  const themes: ThemeDef[] = [];
  const slugs = new Set<string>();
  const orders = new Set<number>();
  v.list(root, 'themes').forEach((t, i) => {
    const p: Path = ['themes', i];
    if (!isObject(t)) return;
    const slug = v.text(t, 'slug', p);
    if (slug !== null && slugs.has(slug)) src.error([...p, 'slug'], `duplicate theme slug "${slug}"`);
    if (slug !== null) slugs.add(slug);
    const ttitle = v.text(t, 'title', p);
    const trunk = v.text(t, 'trunk', p);
    const order = v.integer(t, 'order', p);
    if (order !== null && orders.has(order)) src.error([...p, 'order'], `duplicate order ${order}`);
    if (order !== null) orders.add(order);
    const modules = t.modules === undefined ? 1 : v.integer(t, 'modules', p);
    if (slug && ttitle && (trunk === 'common' || trunk === 'sector') && order !== null && modules !== null) {
      themes.push({ slug, title: ttitle, trunk, order, modules, week: null });
    }
  });
  namedThemes.set(src, slugs);

  const plannedMinutes = root.plannedMinutes === undefined ? null : v.integer(root, 'plannedMinutes', []);

  const weeks: WeekDef[] = [];
  const inWeek = new Map<string, number>();
  v.list(root, 'weeks').forEach((w, i) => {
    const p: Path = ['weeks', i];
    if (!isObject(w)) return;
    const week = v.integer(w, 'week', p);
    if (week !== null && week !== i + 1)
      src.error([...p, 'week'], `weeks are numbered in order from 1: expected ${i + 1}`);
    const wtitle = v.text(w, 'title', p);
    const wthemes: string[] = [];
    v.list(w, 'themes').forEach((slug, j) => {
      if (typeof slug !== 'string' || !slugs.has(slug)) {
        src.error([...p, 'themes', j], `${describe(slug)} is not a theme slug of this track`);
        return;
      }
      const other = inWeek.get(slug);
      if (other !== undefined) src.error([...p, 'themes', j], `theme "${slug}" is already in week ${other}`);
      inWeek.set(slug, i + 1);
      wthemes.push(slug);
    });
    if (week !== null && wtitle !== null) weeks.push({ week, title: wtitle, themes: wthemes });
  });
  if (root.weeks !== undefined) {
    for (const t of themes) {
      const week = inWeek.get(t.slug);
      if (week === undefined) src.error(['weeks'], `theme "${t.slug}" is in no week: every theme belongs to one week`);
      else t.week = week;
    }
  }
  if (id === null || title === null || version === null) return null;
  return { id, title, version, themes: themes.sort((a, b) => a.order - b.order), weeks, plannedMinutes };
}

import { COMMON_FUND, type FundsFile, type TrackDef } from '../model.js';
import type { ContentProblem, SourceFile } from './source.js';

/** What the loader found at one place of a track: `<track>/<owner>/<theme>#<position>`. */
export interface Slot {
  defaults: number;
  defaultMinutes: number | null;
  variants: { file: string; branches: string[]; src: SourceFile; minutes: number | null }[];
}

/**
 * The programme's structure, as track.json states it: for the common trunk and for each fund, every theme
 * holds exactly `modules` modules (positions 1…n, no gap); a branch variant has the default module of its
 * position beside it and the same nominal duration; and a learner's modules add up to `plannedMinutes`.
 * An owner (common or a fund) with no module at all in the track only gets warnings: its learners would
 * see « module pas encore disponible ».
 */
export function checkProgramme(o: {
  track: TrackDef;
  trackSrc: SourceFile;
  trackDirName: string;
  funds: FundsFile;
  slots: Map<string, Slot>;
  fileProblem: (file: string, message: string, severity?: ContentProblem['severity'], editorial?: boolean) => void;
}): void {
  const { track, trackSrc, trackDirName, funds, slots, fileProblem } = o;
  const trackFile = trackSrc.file;
  // Variants without a default of their position.
  for (const [key, slot] of slots) {
    if (!key.startsWith(`${trackDirName}/`) || slot.defaults > 0) continue;
    const [, owner, theme, pos] = /^[^/]+\/([^/]+)\/([^#]+)#(\d+)$/.exec(key) ?? [];
    const expected = pos === '1' ? 'module.yaml' : `module-${pos}.yaml`;
    for (const v of slot.variants) {
      v.src.error(
        [],
        `branch variant without a default module: add ${trackDirName}/${owner}/${theme}/${expected} for the fund's other branches`,
      );
    }
  }
  for (const slot of slots.values()) {
    for (const v of slot.variants) {
      if (slot.defaultMinutes !== null && v.minutes !== null && v.minutes !== slot.defaultMinutes) {
        v.src.editorial(
          ['nominalMinutes'],
          `a branch variant lasts as long as the default module it replaces (${slot.defaultMinutes} min): every learner's programme has the same planned duration`,
        );
      }
    }
  }

  const owners = [COMMON_FUND, ...funds.funds.map((f) => f.slug)];
  for (const owner of owners) {
    const themes = track.themes.filter((t) => (owner === COMMON_FUND ? t.trunk === 'common' : t.trunk === 'sector'));
    if (themes.length === 0) continue;
    const ownerName = owner === COMMON_FUND ? 'the common trunk' : `fund "${owner}"`;
    const hasAny = [...slots.keys()].some((k) => k.startsWith(`${trackDirName}/${owner}/`));
    let found = 0;
    for (const theme of themes) {
      const present: number[] = [];
      for (const [key, slot] of slots) {
        const m = /^[^/]+\/([^/]+)\/([^#]+)#(\d+)$/.exec(key);
        if (!m || !key.startsWith(`${trackDirName}/`) || m[1] !== owner || m[2] !== theme.slug) continue;
        if (slot.defaults > 0) present.push(Number(m[3]));
      }
      present.sort((a, b) => a - b);
      found += present.length;
      if (!hasAny) {
        fileProblem(
          trackFile,
          `theme "${theme.slug}" has no module for ${ownerName} (expected ${owner}/${theme.slug}/module.yaml)`,
          'warning',
        );
        continue;
      }
      const expected = Array.from({ length: theme.modules }, (_, i) => i + 1);
      const missing = expected.filter((n) => !present.includes(n));
      const extra = present.filter((n) => n > theme.modules);
      if (missing.length > 0 || extra.length > 0) {
        const name = (n: number) => `${owner}/${theme.slug}/${n === 1 ? 'module.yaml' : `module-${n}.yaml`}`;
        const parts = [
          `theme "${theme.slug}" holds ${theme.modules} module(s) for ${ownerName} in track.json, found ${present.length}`,
        ];
        if (missing.length > 0) parts.push(`missing ${missing.map(name).join(', ')}`);
        if (extra.length > 0) parts.push(`beyond the count: ${extra.map(name).join(', ')}`);
        const rawThemes = (trackSrc.data as { themes?: { slug?: unknown }[] } | undefined)?.themes ?? [];
        const themeIndex = rawThemes.findIndex((t) => t?.slug === theme.slug);
        const { line, column } = trackSrc.position(['themes', themeIndex, 'modules']);
        trackSrc.at(line, column, parts.join('; '), 'error', true);
      }
    }
    const planned = themes.reduce((n, t) => n + t.modules, 0);
    if (hasAny && found !== planned) {
      const { line, column } = trackSrc.position(['themes']);
      trackSrc.at(
        line,
        column,
        `${owner === COMMON_FUND ? 'the common trunk' : `the sector trunk of fund "${owner}"`} has ${found} module(s); track.json plans ${planned} over its ${themes.length} themes`,
        'error',
        true,
      );
    }
  }
  // The planned duration: every learner follows the common trunk and the sector trunk of their fund.
  if (track.plannedMinutes !== null) {
    const trunkMinutes = (owner: string) => {
      let total = 0;
      for (const [key, slot] of slots) {
        const m = /^[^/]+\/([^/]+)\/([^#]+)#(\d+)$/.exec(key);
        if (!m || !key.startsWith(`${trackDirName}/`) || m[1] !== owner || slot.defaults === 0) continue;
        const theme = track.themes.find((t) => t.slug === m[2]);
        if (!theme || Number(m[3]) > theme.modules) continue;
        total += slot.defaultMinutes ?? 0;
      }
      return total;
    };
    const common = trunkMinutes(COMMON_FUND);
    for (const f of funds.funds) {
      const sector = trunkMinutes(f.slug);
      if (sector === 0) continue;
      if (common + sector !== track.plannedMinutes) {
        const { line, column } = trackSrc.position(['plannedMinutes']);
        trackSrc.at(
          line,
          column,
          `plannedMinutes: a learner of fund "${f.slug}" has ${common} min of common trunk + ${sector} min of sector trunk = ${common + sector} min, not the planned ${track.plannedMinutes} min (nominalMinutes of the modules)`,
          'error',
          true,
        );
      }
    }
  }
}

import type { ThemeDef, TrackDef } from '../catalog/index.js';
import { type TarFile, tarGz } from './tar.js';

/**
 * The SPOC as an Open edX course export (OLX), built from a track's pacing (docs/course-team.md):
 * a "Mon parcours" chapter at the top, then one chapter per week, one sequential (subsection) per theme,
 * one vertical (unit) per module position with one `lti_consumer` block preset for LTI 1.3. Field names are
 * those of the LTI Consumer XBlock (xblock-lti-consumer `LtiConsumerXBlock`); each field is an XML
 * attribute, lists JSON-encoded, booleans `true`/`false`.
 */

export interface CourseKey {
  org: string;
  course: string;
  run: string;
}

export class OlxError extends Error {}

/** `course-v1:ORG+COURSE+RUN` (Open edX opaque key); each part letters, digits, `-`, `_`, `.`. */
export function parseCourseKey(key: string): CourseKey {
  const m = /^course-v1:([A-Za-z0-9_.-]+)\+([A-Za-z0-9_.-]+)\+([A-Za-z0-9_.-]+)$/.exec(key.trim());
  if (!m) throw new OlxError(`course key "${key}" is not of the form course-v1:ORG+COURSE+RUN`);
  return { org: m[1] as string, course: m[2] as string, run: m[3] as string };
}

export interface ToolEndpoints {
  launchUrl: string;
  loginUrl: string;
  keysetUrl: string;
}

export interface OlxOptions {
  courseKey: CourseKey;
  track: TrackDef;
  tool: ToolEndpoints;
  /**
   * The slug of a reusable configuration of the openedx-ltistore plugin: blocks then reference it
   * (`config_type="external"`, `external_config="lti_store:<slug>"`) and share its one client ID.
   */
  ltiStore?: string;
  /** Titles of the common-trunk modules, by `<theme>|<position>` (sector modules depend on the learner's fund). */
  moduleTitles?: ReadonlyMap<string, string>;
  /** Course display name; default: the track's title. */
  title?: string;
}

/** One LTI block of the export: its url_name and its field values as written. */
export interface LtiBlockPlan {
  urlName: string;
  fields: Record<string, string>;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const escapeAttr = (v: string) => v.replace(/[&<>"']/g, (c) => ESCAPES[c] as string).replace(/\n/g, '&#10;');

function element(tag: string, attrs: Record<string, string>, children: string[] = []): string {
  const a = Object.entries(attrs)
    .map(([k, v]) => ` ${k}="${escapeAttr(v)}"`)
    .join('');
  if (children.length === 0) return `<${tag}${a}/>\n`;
  return `<${tag}${a}>\n${children.map((c) => `  ${c}\n`).join('')}</${tag}>\n`;
}

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,79}$/;

/** The score weight of one module in the LMS gradebook (every module counts the same). */
export const MODULE_WEIGHT = 1;

/** The field values of one `lti_consumer` block (LTI 1.3), as XML attribute strings. */
export function ltiBlockFields(
  o: Pick<OlxOptions, 'tool' | 'ltiStore'>,
  block: { displayName: string; customParameters: string[]; graded: boolean },
): Record<string, string> {
  const fields: Record<string, string> = {
    display_name: block.displayName,
    lti_version: 'lti_1p3',
    launch_target: 'iframe',
  };
  if (o.ltiStore !== undefined) {
    // The launch, login and keyset URLs and the client ID come from the reusable configuration.
    fields.config_type = 'external';
    fields.external_config = `lti_store:${o.ltiStore}`;
  } else {
    fields.config_type = 'new';
    fields.lti_1p3_launch_url = o.tool.launchUrl;
    fields.lti_1p3_oidc_url = o.tool.loginUrl;
    fields.lti_1p3_tool_key_mode = 'keyset_url';
    fields.lti_1p3_tool_keyset_url = o.tool.keysetUrl;
  }
  Object.assign(fields, {
    custom_parameters: JSON.stringify(block.customParameters),
    lti_advantage_deep_linking_enabled: 'false',
    lti_advantage_ags_mode: block.graded ? 'declarative' : 'disabled',
    lti_advantage_enable_nrps: 'true',
    has_score: block.graded ? 'true' : 'false',
    weight: block.graded ? MODULE_WEIGHT.toFixed(1) : '0.0',
    accept_grades_past_due: 'true',
    inline_height: '800',
    ask_to_send_username: 'true',
    ask_to_send_full_name: 'true',
    ask_to_send_email: 'true',
  });
  return fields;
}

/** Themes of each week in the track's order; a track without pacing gets one chapter per trunk. */
function chapters(track: TrackDef): { urlName: string; title: string; themes: ThemeDef[] }[] {
  const bySlug = new Map(track.themes.map((t) => [t.slug, t]));
  if (track.weeks.length > 0) {
    return [...track.weeks]
      .sort((a, b) => a.week - b.week)
      .map((w) => ({
        urlName: `semaine-${w.week}`,
        title: w.title,
        themes: w.themes.map((slug) => {
          const t = bySlug.get(slug);
          if (!t) throw new OlxError(`week ${w.week} names unknown theme "${slug}"`);
          return t;
        }),
      }));
  }
  const ordered = [...track.themes].sort((a, b) => a.order - b.order);
  return (['common', 'sector'] as const).map((trunk) => ({
    urlName: trunk === 'common' ? 'tronc-commun' : 'tronc-sectoriel',
    title: trunk === 'common' ? 'Tronc commun' : 'Modules de votre secteur',
    themes: ordered.filter((t) => t.trunk === trunk),
  }));
}

/** The files of the OLX export, under the top folder `course/` (what Studio's import expects). */
export function olxFiles(o: OlxOptions): TarFile[] {
  const { courseKey: key, track } = o;
  if (o.ltiStore !== undefined && !SLUG_PATTERN.test(o.ltiStore)) {
    throw new OlxError(`--lti-store "${o.ltiStore}" is not a slug (lower-case letters, digits and "-")`);
  }
  const files: TarFile[] = [];
  const add = (path: string, content: string) => files.push({ path: `course/${path}`, content });
  const xml = (body: string) => body; // OLX files carry no XML declaration (as Studio's own exports)

  const chapterRefs: string[] = [];
  const gradedThemes: string[] = [];

  // "Mon parcours" at the top: a link without theme= or module= shows the learner's whole programme.
  {
    const block = 'emargement-mon-parcours';
    add(
      `lti_consumer/${block}.xml`,
      xml(
        element(
          'lti_consumer',
          ltiBlockFields(o, { displayName: 'Mon parcours', customParameters: [], graded: false }),
        ),
      ),
    );
    add(
      'vertical/mon-parcours-unite.xml',
      xml(element('vertical', { display_name: 'Mon parcours' }, [`<lti_consumer url_name="${block}"/>`])),
    );
    add(
      'sequential/mon-parcours-sequence.xml',
      xml(element('sequential', { display_name: 'Mon parcours' }, ['<vertical url_name="mon-parcours-unite"/>'])),
    );
    add(
      'chapter/mon-parcours.xml',
      xml(element('chapter', { display_name: 'Mon parcours' }, ['<sequential url_name="mon-parcours-sequence"/>'])),
    );
    chapterRefs.push('<chapter url_name="mon-parcours"/>');
  }

  for (const ch of chapters(track)) {
    const seqRefs: string[] = [];
    for (const theme of ch.themes) {
      const count = Math.max(1, theme.modules);
      const vertRefs: string[] = [];
      for (let position = 1; position <= count; position++) {
        const unit = `${theme.slug}-${position}`;
        const block = `emargement-${unit}`;
        const common = theme.trunk === 'common' ? o.moduleTitles?.get(`${theme.slug}|${position}`) : undefined;
        const title = common ?? (count > 1 ? `${theme.title} (${position}/${count})` : theme.title);
        const custom = [`theme=${theme.slug}`, `position=${position}`];
        add(
          `lti_consumer/${block}.xml`,
          xml(
            element('lti_consumer', ltiBlockFields(o, { displayName: title, customParameters: custom, graded: true })),
          ),
        );
        add(
          `vertical/${unit}.xml`,
          xml(element('vertical', { display_name: title }, [`<lti_consumer url_name="${block}"/>`])),
        );
        vertRefs.push(`<vertical url_name="${unit}"/>`);
      }
      add(
        `sequential/${theme.slug}.xml`,
        xml(element('sequential', { display_name: theme.title, graded: 'true', format: 'Module' }, vertRefs)),
      );
      seqRefs.push(`<sequential url_name="${theme.slug}"/>`);
      gradedThemes.push(theme.slug);
    }
    add(`chapter/${ch.urlName}.xml`, xml(element('chapter', { display_name: ch.title }, seqRefs)));
    chapterRefs.push(`<chapter url_name="${ch.urlName}"/>`);
  }

  const title = o.title ?? track.title;
  add('course.xml', xml(element('course', { url_name: key.run, org: key.org, course: key.course })));
  add(`course/${key.run}.xml`, xml(element('course', { display_name: title, language: 'fr' }, chapterRefs)));
  add(
    `policies/${key.run}/policy.json`,
    `${JSON.stringify(
      {
        [`course/${key.run}`]: {
          display_name: title,
          language: 'fr',
          advanced_modules: ['lti_consumer'],
          lti_passports: [],
        },
      },
      null,
      2,
    )}\n`,
  );
  add(
    `policies/${key.run}/grading_policy.json`,
    `${JSON.stringify(
      {
        GRADER: [
          // Each theme (subsection) is one "Module" assignment; inside it each module's block weighs the same.
          { type: 'Module', short_label: 'Mod', min_count: gradedThemes.length, drop_count: 0, weight: 1.0 },
        ],
        GRADE_CUTOFFS: { Pass: 0.5 },
      },
      null,
      2,
    )}\n`,
  );
  add('policies/assets.json', '{}\n');
  return files;
}

/** The `.tar.gz` Studio imports (Tools → Import); the same inputs give the same bytes. */
export function olxArchive(o: OlxOptions): Buffer {
  return tarGz(olxFiles(o));
}

import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DOMParser } from 'linkedom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContent, type TrackDef } from '../../src/catalog/index.js';
import { runOpenEdxCommand } from '../../src/openedx/index.js';

/**
 * The LTI 1.3 fields of xblock-lti-consumer's LtiConsumerXBlock (lti_xblock.py), written here by hand so
 * that the test fails if the export writes a field the block does not know.
 */
const LTI_CONSUMER_FIELDS = new Set([
  'display_name',
  'description',
  'lti_version',
  'launch_target',
  'lti_1p3_launch_url',
  'lti_1p3_oidc_url',
  'lti_1p3_tool_key_mode',
  'lti_1p3_tool_keyset_url',
  'lti_1p3_tool_public_key',
  'lti_advantage_deep_linking_enabled',
  'lti_advantage_deep_linking_launch_url',
  'lti_advantage_ags_mode',
  'lti_advantage_enable_nrps',
  'custom_parameters',
  'has_score',
  'weight',
  'accept_grades_past_due',
  'button_text',
  'inline_height',
  'modal_height',
  'modal_width',
  'ask_to_send_username',
  'ask_to_send_email',
  'ask_to_send_full_name',
  'enable_processors',
  'config_type',
  'external_config',
]);

const PUBLIC_URL = 'https://emargement.example.org';
const CONTENT_DIR = resolve('content');
let dir: string;
let track: TrackDef;

async function generate(name: string, extra: string[] = []): Promise<{ bytes: Buffer; root: string }> {
  const out = join(dir, `${name}.tar.gz`);
  const errors: string[] = [];
  const code = await runOpenEdxCommand(
    ['olx', '--course-key', 'course-v1:FUN+TPE-PME+2026_S1', '--out', out, ...extra],
    { out: () => {}, err: (t) => errors.push(t) },
    { publicUrl: PUBLIC_URL, contentDir: CONTENT_DIR },
  );
  expect(errors).toEqual([]);
  expect(code).toBe(0);
  const root = join(dir, name);
  execFileSync('mkdir', ['-p', root]);
  // Extracted by the system's tar, not by our own reader.
  execFileSync('tar', ['-xzf', out, '-C', root]);
  return { bytes: await readFile(out), root };
}

async function xml(root: string, path: string): Promise<Element> {
  const text = await readFile(join(root, 'course', path), 'utf8');
  const doc = new DOMParser().parseFromString(text, 'text/xml');
  const el = doc.documentElement as unknown as Element | null;
  if (!el) throw new Error(`${path}: no root element`);
  return el;
}

const attrs = (el: Element): Record<string, string> =>
  Object.fromEntries([...el.attributes].map((a) => [a.name, a.value]));
const childRefs = (el: Element, tag: string): string[] =>
  [...el.children].filter((c) => c.tagName.toLowerCase() === tag).map((c) => c.getAttribute('url_name') as string);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'olx-'));
  const load = await loadContent(CONTENT_DIR);
  const t = load.content?.tracks[0]?.track;
  if (!t) throw new Error('no track in content/');
  track = t;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the Open edX course export (OLX)', () => {
  it('holds Mon parcours then one section per week, a subsection per theme, a unit per module, every LTI field known', async () => {
    const { root } = await generate('default');

    const top = await xml(root, 'course.xml');
    expect(top.tagName.toLowerCase()).toBe('course');
    expect(attrs(top)).toEqual({ url_name: '2026_S1', org: 'FUN', course: 'TPE-PME' });

    const course = await xml(root, 'course/2026_S1.xml');
    const chapters = childRefs(course, 'chapter');
    expect(chapters).toEqual(['mon-parcours', ...track.weeks.map((w) => `semaine-${w.week}`)]);
    expect(track.weeks).toHaveLength(4);

    const policy = JSON.parse(await readFile(join(root, 'course/policies/2026_S1/policy.json'), 'utf8'));
    expect(policy['course/2026_S1'].advanced_modules).toEqual(['lti_consumer']);
    const grading = JSON.parse(await readFile(join(root, 'course/policies/2026_S1/grading_policy.json'), 'utf8'));
    expect(grading.GRADER).toEqual([expect.objectContaining({ type: 'Module', min_count: track.themes.length })]);

    const checkBlock = async (urlName: string) => {
      const block = await xml(root, `lti_consumer/${urlName}.xml`);
      expect(block.tagName.toLowerCase()).toBe('lti_consumer');
      const fields = attrs(block);
      for (const name of Object.keys(fields)) expect(LTI_CONSUMER_FIELDS, `${urlName}: ${name}`).toContain(name);
      expect(fields).toMatchObject({
        lti_version: 'lti_1p3',
        launch_target: 'iframe',
        config_type: 'new',
        lti_1p3_launch_url: `${PUBLIC_URL}/lti/launch`,
        lti_1p3_oidc_url: `${PUBLIC_URL}/lti/login`,
        lti_1p3_tool_key_mode: 'keyset_url',
        lti_1p3_tool_keyset_url: `${PUBLIC_URL}/.well-known/jwks.json`,
        lti_advantage_deep_linking_enabled: 'false',
        lti_advantage_enable_nrps: 'true',
      });
      expect(fields.external_config).toBeUndefined();
      return { fields, custom: JSON.parse(fields.custom_parameters as string) as string[] };
    };

    // Mon parcours: a launch without theme= or module=, not graded.
    const parcoursChapter = await xml(root, 'chapter/mon-parcours.xml');
    const [parcoursSeq] = childRefs(parcoursChapter, 'sequential');
    const [parcoursUnit] = childRefs(await xml(root, `sequential/${parcoursSeq}.xml`), 'vertical');
    const [parcoursBlock] = childRefs(await xml(root, `vertical/${parcoursUnit}.xml`), 'lti_consumer');
    const parcours = await checkBlock(parcoursBlock as string);
    expect(parcours.custom).toEqual([]);
    expect(parcours.fields).toMatchObject({ display_name: 'Mon parcours', has_score: 'false' });

    let modules = 0;
    for (const week of track.weeks) {
      const chapter = await xml(root, `chapter/semaine-${week.week}.xml`);
      expect(chapter.getAttribute('display_name')).toBe(week.title);
      const seqs = childRefs(chapter, 'sequential');
      expect(seqs).toEqual(week.themes);
      for (const slug of seqs) {
        const theme = track.themes.find((t) => t.slug === slug) as TrackDef['themes'][number];
        const seq = await xml(root, `sequential/${slug}.xml`);
        expect(attrs(seq)).toMatchObject({ display_name: theme.title, graded: 'true', format: 'Module' });
        const units = childRefs(seq, 'vertical');
        expect(units).toHaveLength(theme.modules);
        for (const [i, unit] of units.entries()) {
          const blocks = childRefs(await xml(root, `vertical/${unit}.xml`), 'lti_consumer');
          expect(blocks).toHaveLength(1);
          const { fields, custom } = await checkBlock(blocks[0] as string);
          expect(custom).toEqual([`theme=${slug}`, `position=${i + 1}`]);
          expect(fields).toMatchObject({
            has_score: 'true',
            weight: '1.0',
            lti_advantage_ags_mode: 'declarative',
            accept_grades_past_due: 'true',
          });
          modules++;
        }
      }
    }
    expect(modules).toBe(16);
    // Nothing in the archive that the structure does not reference.
    expect((await readdir(join(root, 'course/lti_consumer'))).length).toBe(17);
    expect((await readdir(join(root, 'course/vertical'))).length).toBe(17);
  });

  it('gives the same bytes twice', async () => {
    const a = await generate('again-1');
    const b = await generate('again-2');
    expect(a.bytes.equals(b.bytes)).toBe(true);
    // gzip header: no file name flag, mtime 0.
    expect(a.bytes[3]).toBe(0);
    expect(a.bytes.readUInt32LE(4)).toBe(0);
  });

  it('with --lti-store, every block references the one reusable configuration and carries no URL', async () => {
    const { root } = await generate('store', ['--lti-store', 'emargement']);
    const names = await readdir(join(root, 'course/lti_consumer'));
    expect(names).toHaveLength(17);
    for (const name of names) {
      const fields = attrs(await xml(root, `lti_consumer/${name}`));
      for (const f of Object.keys(fields)) expect(LTI_CONSUMER_FIELDS).toContain(f);
      expect(fields).toMatchObject({ config_type: 'external', external_config: 'lti_store:emargement' });
      expect(fields.lti_1p3_launch_url).toBeUndefined();
      expect(fields.lti_1p3_tool_keyset_url).toBeUndefined();
    }
  });

  it('refuses a malformed course key or store slug with a clear message', async () => {
    const errors: string[] = [];
    const io = { out: () => {}, err: (t: string) => errors.push(t) };
    const config = { publicUrl: PUBLIC_URL, contentDir: CONTENT_DIR };
    const out = join(dir, 'bad.tar.gz');
    expect(await runOpenEdxCommand(['olx', '--course-key', 'FUN/TPE/2026', '--out', out], io, config)).toBe(2);
    expect(errors.join('')).toContain('course-v1:ORG+COURSE+RUN');
    expect(
      await runOpenEdxCommand(
        ['olx', '--course-key', 'course-v1:FUN+X+1', '--out', out, '--lti-store', 'Bad Slug'],
        io,
        config,
      ),
    ).toBe(2);
    expect(errors.join('')).toContain('not a slug');
  });
});

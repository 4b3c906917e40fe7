import {
  type ActivityBlock,
  type Block,
  COMMON_FUND,
  type FundsFile,
  type ModuleManifest,
  type QuizQuestion,
  type SourceRef,
  type ThemeDef,
  type TrackDef,
  type TutorialStep,
} from '../model.js';
import { ACTIVITY_KINDS, BLOCK_SCHEMAS, type BlockType, IDCC, ModuleSchema } from './schemas.js';
import { describe, isObject, type Path, type SourceFile } from './source.js';
import { Validation } from './validate.js';

/**
 * module.yaml: the schema pass (each block against the schema of its type), then the rules a schema
 * cannot state: the module's place (its directory, theme and fund), its branches, the block ids, one quiz
 * placed last and one activity, a quiz answer among its choices, the review date and the sources.
 */

export interface ModuleContext {
  track: TrackDef | null;
  /** Every theme slug track.json names (valid entry or not). */
  themeSlugs: Set<string> | null;
  funds: FundsFile | null;
  /** From the path: content/<track>/<fundDir>/<themeDir>/<file>. */
  fundDir: string;
  themeDir: string;
  isVariant: boolean;
  /** The module's place in its theme, from its file name. */
  position: number;
}

export function readModule(src: SourceFile, ctx: ModuleContext): ModuleManifest | null {
  if (!src.ok) return null;
  const v = new Validation(src);
  const root = src.data;
  v.check(ModuleSchema, root);
  if (!isObject(root)) return null;

  const id = v.text(root, 'id', []);
  const version = v.integer(root, 'version', []);
  const title = v.text(root, 'title', []);
  const summary = v.text(root, 'summary', []);
  const nominalMinutes = v.integer(root, 'nominalMinutes', []);

  const theme = v.text(root, 'theme', []);
  let themeDef: ThemeDef | undefined;
  if (theme !== null) {
    if (theme !== ctx.themeDir) src.error(['theme'], `"${theme}" must match its directory "${ctx.themeDir}"`);
    themeDef = ctx.track?.themes.find((t) => t.slug === theme);
    if (ctx.track && !themeDef && !ctx.themeSlugs?.has(theme)) {
      src.error(
        ['theme'],
        `unknown theme "${theme}" (themes of ${ctx.track.id}: ${ctx.track.themes.map((t) => t.slug).join(', ')})`,
      );
    }
  }

  const fund = v.text(root, 'fund', []);
  const fundDef = ctx.funds?.funds.find((f) => f.slug === fund);
  if (fund !== null) {
    if (fund !== ctx.fundDir) src.error(['fund'], `"${fund}" must match its directory "${ctx.fundDir}"`);
    if (fund !== COMMON_FUND && ctx.funds && !fundDef) {
      src.error(
        ['fund'],
        `unknown fund "${fund}" (funds.json: ${ctx.funds.funds.map((f) => f.slug).join(', ')}, or "common")`,
      );
    }
    if (themeDef) {
      if (fund === COMMON_FUND && themeDef.trunk !== 'common') {
        src.error(
          ['fund'],
          `theme "${themeDef.slug}" is in the sector trunk: its modules belong to a fund, not "common"`,
        );
      }
      if (fund !== COMMON_FUND && themeDef.trunk === 'common') {
        src.error(['fund'], `theme "${themeDef.slug}" is in the common trunk: its module goes under common/`);
      }
    }
  }

  const branches: string[] = [];
  const rawBranches = v.list(root, 'branches');
  rawBranches.forEach((b, i) => {
    const p: Path = ['branches', i];
    if (typeof b !== 'string' || !IDCC.test(b)) return;
    if (fund === COMMON_FUND) src.error(p, 'common-trunk modules have no branch variants');
    else if (fundDef && !fundDef.branches.some((x) => x.idcc === b)) {
      src.error(p, `IDCC ${b} is not a branch of fund "${fundDef.slug}" in funds.json`);
    }
    if (branches.includes(b)) src.error(p, `IDCC ${b} is listed twice`);
    branches.push(b);
  });
  if (ctx.isVariant && rawBranches.length === 0) {
    src.error(['branches'], 'a branch variant (module.<variant>.yaml) needs a non-empty list of IDCC codes');
  }
  if (!ctx.isVariant && rawBranches.length > 0) {
    src.error(['branches'], 'the default module (module.yaml) has no branches: put a variant in module.<variant>.yaml');
  }

  const blocks = readBlocks(v, root);

  // Content model v2 fields: missing ones are editorial errors (the module still loads).
  let reviewedOn: string | undefined;
  if (root.reviewedOn === undefined || root.reviewedOn === null) {
    src.editorial(['reviewedOn'], 'is required: the date of the last factual review, e.g. "2026-12-01"');
  } else {
    const date = v.text(root, 'reviewedOn', []);
    if (date !== null) {
      const d = new Date(`${date}T00:00:00Z`);
      if (Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== date)
        src.error(['reviewedOn'], `"${date}" is not a date`);
      else reviewedOn = date;
    }
  }
  let sources: SourceRef[] | undefined;
  if (root.sources === undefined || root.sources === null) {
    src.editorial(['sources'], 'is required: at least one source, shown to the learner as « Pour aller plus loin »');
  } else {
    sources = [];
    const list = v.list(root, 'sources');
    if (Array.isArray(root.sources) && list.length === 0) src.editorial(['sources'], 'needs at least one source');
    list.forEach((item, i) => {
      const p: Path = ['sources', i];
      if (!isObject(item)) return;
      const stitle = v.text(item, 'title', p);
      const url = v.text(item, 'url', p);
      const supports = v.text(item, 'supports', p);
      if (stitle !== null && url !== null && supports !== null) sources?.push({ title: stitle, url, supports });
    });
  }

  if (
    id === null ||
    version === null ||
    title === null ||
    summary === null ||
    nominalMinutes === null ||
    theme === null ||
    fund === null ||
    blocks === null
  ) {
    return null;
  }
  const manifest: ModuleManifest = { id, version, title, theme, fund, branches, nominalMinutes, summary, blocks };
  // Only when present: a file without them keeps the content hash it had before they existed.
  if (reviewedOn !== undefined) manifest.reviewedOn = reviewedOn;
  if (sources !== undefined) manifest.sources = sources;
  return manifest;
}

function readBlocks(v: Validation, root: Record<string, unknown>): Block[] | null {
  const src = v.src;
  const items = v.list(root, 'blocks');
  const blocks: Block[] = [];
  const ids = new Set<string>();
  let failed = items.length === 0;
  let quizzes = 0;
  let activities = 0;
  items.forEach((item, i) => {
    const p: Path = ['blocks', i];
    if (!isObject(item)) {
      src.error(p, 'must be a mapping with a "type"');
      failed = true;
      return;
    }
    const type = item.type;
    if (typeof type !== 'string' || !Object.hasOwn(BLOCK_SCHEMAS, type)) {
      src.error([...p, 'type'], `${describe(type)}: type must be video, tutorial, testimonial, activity or quiz`);
      failed = true;
      return;
    }
    if (type === 'quiz') {
      quizzes++;
      if (i !== items.length - 1) src.error([...p, 'type'], 'the quiz must be the last block');
    }
    if (type === 'activity') activities++;
    v.check(BLOCK_SCHEMAS[type as BlockType], item, p);
    const block = buildBlock(v, type as BlockType, item, p);
    if (block === null) {
      failed = true;
      return;
    }
    if (ids.has(block.id)) {
      src.error([...p, 'id'], `duplicate block id "${block.id}"`);
      failed = true;
    }
    ids.add(block.id);
    blocks.push(block);
  });
  if (items.length > 0 && quizzes === 0) {
    src.error(['blocks'], 'needs a quiz block (a short self-check, placed last)');
    failed = true;
  }
  if (quizzes > 1) {
    src.error(['blocks'], `has ${quizzes} quiz blocks: exactly one, placed last`);
    failed = true;
  }
  if (items.length > 0 && activities === 0) {
    src.editorial(['blocks'], 'needs an activity block (a checklist, worked example or scenario, before the quiz)');
  }
  if (activities > 1) src.editorial(['blocks'], `has ${activities} activity blocks: exactly one`);
  return failed ? null : blocks;
}

/** A block that passed its schema pass, or null when a value it needs was rejected. */
function buildBlock(v: Validation, type: BlockType, o: Record<string, unknown>, p: Path): Block | null {
  const id = v.text(o, 'id', p);
  const title = v.text(o, 'title', p);
  switch (type) {
    case 'video': {
      const src = v.text(o, 'src', p);
      const captions = v.text(o, 'captions', p);
      const transcript = v.text(o, 'transcript', p);
      if (id === null || title === null || src === null || transcript === null) return null;
      return { type: 'video', id, title, src, captions, transcript };
    }
    case 'tutorial': {
      const steps: TutorialStep[] = [];
      let failed = false;
      v.list(o, 'steps').forEach((s, j) => {
        const sp: Path = [...p, 'steps', j];
        const stitle = isObject(s) ? v.text(s, 'title', sp) : null;
        const body = isObject(s) ? v.text(s, 'body', sp) : null;
        if (stitle === null || body === null) failed = true;
        else steps.push({ title: stitle, body });
      });
      if (id === null || title === null || failed || steps.length === 0) return null;
      return { type: 'tutorial', id, title, steps };
    }
    case 'testimonial': {
      const quote = v.text(o, 'quote', p);
      const person = v.text(o, 'person', p);
      const role = v.text(o, 'role', p);
      const video = v.text(o, 'video', p);
      const captions = v.text(o, 'captions', p);
      const transcript = v.text(o, 'transcript', p);
      if (id === null || quote === null || person === null || role === null) return null;
      return { type: 'testimonial', id, title, quote, person, role, video, captions, transcript };
    }
    case 'activity':
      return buildActivity(v, o, p, id, title);
    case 'quiz':
      return buildQuiz(v, o, p, id, title);
  }
}

function buildActivity(
  v: Validation,
  o: Record<string, unknown>,
  p: Path,
  id: string | null,
  title: string | null,
): Block | null {
  const kind = v.text(o, 'kind', p);
  const minutes = v.integer(o, 'minutes', p);
  const instructions = v.text(o, 'instructions', p);
  const raw = v.list(o, 'items');
  const items = raw.filter((c, k): c is string => typeof c === 'string' && v.ok([...p, 'items', k]));
  if (kind === 'checklist' && (raw.length < 4 || raw.length > 10)) {
    v.src.editorial([...p, 'items'], `a checklist has 4 to 10 items (has ${raw.length})`);
  }
  const debrief = v.text(o, 'debrief', p);
  if (
    id === null ||
    kind === null ||
    !(ACTIVITY_KINDS as readonly string[]).includes(kind) ||
    title === null ||
    minutes === null ||
    instructions === null ||
    debrief === null ||
    items.length !== raw.length ||
    items.length === 0
  ) {
    return null;
  }
  return { type: 'activity', id, kind: kind as ActivityBlock['kind'], title, minutes, instructions, items, debrief };
}

function buildQuiz(
  v: Validation,
  o: Record<string, unknown>,
  p: Path,
  id: string | null,
  title: string | null,
): Block | null {
  const questions: QuizQuestion[] = [];
  let failed = false;
  v.list(o, 'questions').forEach((q, j) => {
    const qp: Path = [...p, 'questions', j];
    if (!isObject(q)) {
      failed = true;
      return;
    }
    const prompt = v.text(q, 'prompt', qp);
    const rawChoices = v.list(q, 'choices');
    const choices = rawChoices.filter((c, k): c is string => typeof c === 'string' && v.ok([...qp, 'choices', k]));
    if (choices.length !== rawChoices.length) failed = true;
    if (new Set(choices).size !== choices.length) v.src.error([...qp, 'choices'], 'two choices are identical');
    // The answer is the index of a choice.
    let answer = v.integer(q, 'answer', qp);
    const last = Math.max(0, rawChoices.length - 1);
    if (answer !== null && (answer < 0 || answer > last)) {
      v.reject([...qp, 'answer'], `must be between 0 and ${last} (got ${answer})`);
      answer = null;
    }
    const explanation = v.text(q, 'explanation', qp);
    if (prompt === null || answer === null || explanation === null || choices.length < 2) failed = true;
    else questions.push({ prompt, choices, answer, explanation });
  });
  if (id === null || title === null || failed || questions.length < 2) return null;
  return { type: 'quiz', id, title, questions };
}

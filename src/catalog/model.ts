/**
 * The content model (content/README.md is its contract): what `content.ts` produces after validation
 * and what `module_versions.manifest` stores.
 */

export interface BranchDef {
  idcc: string;
  name: string;
  /** The branch's OPCA in 2017 when it was not its fund's historical OPCA (optional in funds.json). */
  historicalName?: string;
}

export interface FundDef {
  slug: string;
  name: string;
  historicalName: string | null;
  sectors: string[];
  branches: BranchDef[];
}

export interface FundsFile {
  version: number;
  funds: FundDef[];
}

export type TrunkKind = 'common' | 'sector';

export interface ThemeDef {
  slug: string;
  title: string;
  trunk: TrunkKind;
  order: number;
  /** How many modules the theme holds for the common trunk or for each fund (track.json `modules`, default 1). */
  modules: number;
  /** The week of the programme the theme belongs to (track.json `weeks`); null without pacing. */
  week: number | null;
}

export interface WeekDef {
  week: number;
  title: string;
  themes: string[];
}

export interface TrackDef {
  id: string;
  title: string;
  version: number;
  themes: ThemeDef[];
  /** The pacing: which themes make each week. Empty for a track without pacing. */
  weeks: WeekDef[];
  /** The planned duration of a learner's programme, in minutes (e.g. 240 for 4 h); null when not stated. */
  plannedMinutes: number | null;
}

export interface VideoBlock {
  type: 'video';
  id: string;
  title: string;
  /** "placeholder", an https URL of a video file, or an https URL of an embeddable player. */
  src: string;
  captions: string | null;
  transcript: string;
}

export interface TutorialStep {
  title: string;
  body: string;
}

export interface TutorialBlock {
  type: 'tutorial';
  id: string;
  title: string;
  steps: TutorialStep[];
}

export interface TestimonialBlock {
  type: 'testimonial';
  id: string;
  /** Optional heading; defaults to "Témoignage". */
  title: string | null;
  quote: string;
  person: string;
  role: string;
  video: string | null;
  captions: string | null;
  /** Markdown; when absent the quote is the text alternative of the video. */
  transcript: string | null;
}

export interface QuizQuestion {
  prompt: string;
  choices: string[];
  answer: number;
  explanation: string;
}

export interface QuizBlock {
  type: 'quiz';
  id: string;
  title: string;
  questions: QuizQuestion[];
}

export type ActivityKind = 'checklist' | 'worked-example' | 'scenario';

/** A task the learner does for their own company; its items are ticked in the page only, never stored. */
export interface ActivityBlock {
  type: 'activity';
  id: string;
  kind: ActivityKind;
  title: string;
  /** The activity's own time estimate (reading its instructions and doing it). */
  minutes: number;
  instructions: string;
  items: string[];
  /** Markdown shown on demand after the activity: the worked answer. */
  debrief: string;
}

export type Block = VideoBlock | TutorialBlock | TestimonialBlock | ActivityBlock | QuizBlock;

/** A reference shown to the learner as « Pour aller plus loin ». */
export interface SourceRef {
  title: string;
  url: string;
  /** The claim of the module this source backs. */
  supports: string;
}

export interface ModuleManifest {
  id: string;
  version: number;
  title: string;
  theme: string;
  /** A fund slug, or "common" for the common trunk. */
  fund: string;
  branches: string[];
  nominalMinutes: number;
  summary: string;
  blocks: Block[];
  /**
   * Content model v2 fields. Absent (not null) in a manifest whose file does not have them, so that the
   * content hash of a file written before they existed stays the same.
   */
  reviewedOn?: string;
  sources?: SourceRef[];
}

export const COMMON_FUND = 'common';

export interface GlossaryEntry {
  term: string;
  expansion: string | null;
  definition: string;
}

/** Glossary areas: "common" (general terms) and one per fund slug. */
export type Glossary = Record<string, GlossaryEntry[]>;

/** A validated content directory, ready to import. */
export interface ContentSet {
  funds: FundsFile;
  fundsHash: string;
  tracks: { track: TrackDef; hash: string; path: string }[];
  /** `position`: the module's place in its theme, from its file name (module.yaml 1, module-N.yaml N). */
  modules: { manifest: ModuleManifest; track: string; hash: string; path: string; position: number }[];
  glossary: Glossary;
}

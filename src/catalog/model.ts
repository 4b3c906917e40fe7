/**
 * The content model (content/README.md is its contract): what `content.ts` produces after validation
 * and what `module_versions.manifest` stores.
 */

export interface BranchDef {
  idcc: string;
  name: string;
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
}

export interface TrackDef {
  id: string;
  title: string;
  version: number;
  themes: ThemeDef[];
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

export type Block = VideoBlock | TutorialBlock | TestimonialBlock | QuizBlock;

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
}

export const COMMON_FUND = 'common';

/** A validated content directory, ready to import. */
export interface ContentSet {
  funds: FundsFile;
  fundsHash: string;
  tracks: { track: TrackDef; hash: string; path: string }[];
  modules: { manifest: ModuleManifest; track: string; hash: string; path: string }[];
}

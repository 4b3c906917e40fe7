import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/index.js';
import type { Db } from '../db/index.js';
import type { SafeHtml } from '../http/html.js';
import type { ModuleCompletedListener } from './service.js';

/** What another capability adds to every module page (the connection-time tracker adds its script). */
export interface ModulePageContext {
  moduleId: string;
  moduleVersion: number;
  courseId: string | null;
  learnerId: string;
  resourceLinkId: string | null;
  sessionToken: string;
  /** Course-team preview: nothing is recorded, time must not be counted. */
  preview: boolean;
  nominalMinutes: number;
}
export type ModulePageFragment = (ctx: ModulePageContext) => { head?: SafeHtml; body?: SafeHtml; nav?: SafeHtml };

/** Credited time of a learner in a course, as "Mon parcours" shows it. */
export interface ParcoursTimes {
  /** Seconds per module id. */
  byModule: ReadonlyMap<string, number>;
  /** Seconds over the whole course. */
  totalSeconds: number;
}

/** The learner's certificate as "Mon parcours" shows it: the valid one's number, or what is missing. */
export interface ParcoursCertificateState {
  number: string | null;
  missing: string[];
}

/** What other capabilities lend to "Mon parcours" and the course-team page (the catalog imports none of them). */
export interface ParcoursSources {
  times?: (learnerId: string, courseId: string) => Promise<ParcoursTimes>;
  timePagePath?: string;
  certificate?: (learnerId: string, courseId: string) => Promise<ParcoursCertificateState | null>;
  /** The course's issuance rule, in plain French. */
  issuanceRule?: (courseId: string) => Promise<string>;
}

/** What a learner's "Mon parcours" page tells a fragment. */
export interface ParcoursFragmentContext {
  learnerId: string;
  courseId: string;
  fundSlug: string;
  sessionToken: string;
  modulesDone: number;
  modulesPlanned: number;
}
/** A section another capability adds to "Mon parcours" (null: nothing to show). */
export type ParcoursFragment = (ctx: ParcoursFragmentContext) => Promise<SafeHtml | null>;

export interface CatalogRuntime {
  fragments: ModulePageFragment[];
  parcours: ParcoursSources;
  /** Absent in a runtime built before parcours fragments existed. */
  parcoursFragments?: ParcoursFragment[];
  /** Told of each completed link, inside the completion's transaction (see `registerModuleCompletedListener`). */
  completionListeners: ModuleCompletedListener[];
}

/** What the page services of src/catalog/pages/ work with. */
export interface CatalogContext {
  db: Db;
  config: Config;
  runtime: CatalogRuntime;
}

/** What a page service reads from the request: its id (the reference a learner gives) and its logger. */
export interface PageRequest {
  id: string;
  log: FastifyBaseLogger;
}

/** A rendered page and its HTTP status, sent by the routes with `sendLearnerPage`. */
export interface Page {
  status: number;
  body: string;
}

export const page = (body: string, status = 200): Page => ({ status, body });

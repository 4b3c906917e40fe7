import type { FastifyInstance } from 'fastify';
import { html, type SafeHtml } from '../http/html.js';

/**
 * Small pieces one capability adds to another's learner pages without importing it: the privacy capability
 * registers its « Mes données » download forms, and the pages that show a learner their own records (the time
 * page, « Mon parcours ») call `learnerFragments` with the session token they already hold. Keyed on the
 * app's server so that every encapsulated plugin context of one app shares one registry.
 */
export interface LearnerPageContext {
  /** The learner's session token (goes into POST forms only, never into a URL). */
  sessionToken: string;
}

export type LearnerFragment = (ctx: LearnerPageContext) => SafeHtml;

const registries = new WeakMap<object, Map<string, LearnerFragment>>();

export function registerLearnerFragment(app: FastifyInstance, name: string, fragment: LearnerFragment): void {
  let registry = registries.get(app.server);
  if (!registry) {
    registry = new Map();
    registries.set(app.server, registry);
  }
  registry.set(name, fragment);
}

/** Every registered fragment for this learner page, in registration order (empty when none). */
export function learnerFragments(app: FastifyInstance, ctx: LearnerPageContext): SafeHtml {
  const registry = registries.get(app.server);
  if (!registry) return html``;
  return html`${[...registry.values()].map((fragment) => fragment(ctx))}`;
}

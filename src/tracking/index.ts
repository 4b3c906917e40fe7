/**
 * Connection time (docs/time-accounting.md): the in-page tracker, the idempotent beat ingest, crediting
 * `beats-v2` (and `beats-v1` re-derived for comparison), hash-chained evidence, totals, plausibility flags.
 * The only file other capabilities import from src/tracking/; it exports only what they use (the layout is
 * described in src/tracking/README.md).
 */

export {
  canonicalJson as evidenceCanonicalJson,
  type EvidenceRecord,
  evidenceHash,
  redactionStatement,
} from './chain.js';
export { runTimeCommand } from './cli.js';
export { settleTracking } from './inbox/crediting.js';
export { registerCommonTrunkEstimate, trackingPlugin } from './plugin.js';
export { completedQuickly, type FocusMark, parisDay, presenceSessions, type RunInterval } from './rules.js';
export { digestOf } from './service/maintenance.js';
export { deviceClass, getCourseTimes, getLearnerTimes, getPresenceSessions } from './service/times.js';

/**
 * Common-trunk time estimated from Open edX logs (time-accounting.md, "Common-trunk time"): import of
 * tracking logs and xAPI statements, LMS user → learner mapping, sessionization `lms-sessions-v1` minus
 * the time the tool measured itself. The only file other capabilities import from src/lms/.
 */
export { lmsCommand, runLmsCommand } from './cli.js';
export {
  courseKeyIn,
  detectFormat,
  estimateLmsTime,
  type Interval,
  LMS_ALGORITHM,
  LMS_SESSIONS_V1,
  type LmsEstimate,
  type LmsEvent,
  type LmsParams,
  type LmsSession,
  lmsParamsRecord,
  overlapMs,
  parseLmsTime,
  parseMappingCsv,
  readLine,
  sessionize,
  totalMs,
  unionIntervals,
} from './rules.js';
export {
  type ImportReport,
  importLmsFile,
  importMappingFile,
  type LmsEstimateView,
  lmsEstimateFor,
  MappingError,
  mapLmsUser,
  type RecomputeReport,
  recomputeLmsTotals,
  type Unmatched,
  unmapLmsUser,
} from './service.js';
export type { LmsTables } from './tables.js';

/**
 * The Open edX course export: the SPOC as an OLX archive Studio imports, with every LTI component preset
 * (docs/course-team.md). The only file other capabilities import from src/openedx/.
 */
export { runOpenEdxCommand } from './cli.js';
export {
  type CourseKey,
  type LtiBlockPlan,
  ltiBlockFields,
  OlxError,
  type OlxOptions,
  olxArchive,
  olxFiles,
  parseCourseKey,
} from './olx.js';
export { tarBuffer, tarGz } from './tar.js';

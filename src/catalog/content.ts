/**
 * The content check and loader (content/README.md), in src/catalog/content/: TypeBox schemas of the
 * files (schemas.ts), the schema pass and its messages (validate.ts), positions (source.ts), the rules
 * of each file and between files, and the loader. This file keeps the catalog's imports unchanged.
 */

export { GLOSSARY_DIR } from './content/glossary.js';
export { contentHash, trackHash } from './content/hash.js';
export { type ContentLoad, contentFingerprint, type LoadedModule, loadContent } from './content/loader.js';
export { type ContentProblem, formatProblem, SourceFile } from './content/source.js';
export type { ModuleEstimate } from './editorial.js';

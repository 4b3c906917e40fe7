/**
 * The shape of src/ (checked by test/foundation/architecture.test.ts, which `npm test` runs):
 * - one folder per capability; no import cycle between folders;
 * - another capability is reached only through its `index.ts`. The foundation folders (`common`,
 *   `config`, `db`, `http`) are libraries every capability may import file by file; they import no
 *   capability themselves.
 *
 * The installed TypeScript (7, a native compiler) has no JavaScript API for dependency-cruiser to parse
 * .ts files with, so the test first strips the types of every file under src/ into a scratch directory
 * (keeping every import that is not `import type`), then cruises that copy with this configuration.
 */
const FOUNDATION = '(common|config|db|http)';

module.exports = {
  forbidden: [
    {
      name: 'no-capability-cycle',
      severity: 'error',
      comment:
        'Two capability folders import each other (directly or through others): publish through a registration hook instead.',
      from: { path: '^src/([^/]+)/' },
      to: { circular: true, viaSomeNot: '^src/$1/' },
    },
    {
      name: 'capability-through-index',
      severity: 'error',
      comment: 'Import another capability through its index.ts, never one of its inner files.',
      from: { path: '^src/([^/]+)/' },
      to: {
        path: '^src/[^/]+/',
        pathNot: [`^src/$1/`, '^src/[^/]+/index\\.(ts|js)$', `^src/${FOUNDATION}/`],
      },
    },
    {
      name: 'routes-through-services',
      severity: 'error',
      comment: 'A route handler is a schema plus service calls: reach the tables through a service.',
      from: { path: ['^src/[^/]+/routes\\.js$', '^src/[^/]+/[a-z-]+-routes\\.js$', '^src/[^/]+/routes/'] },
      to: { path: ['^src/[^/]+/repository\\.js$', '^src/[^/]+/[a-z-]+-repository\\.js$', '^src/[^/]+/repository/'] },
    },
    {
      name: 'foundation-imports-no-capability',
      severity: 'error',
      comment: 'The foundation folders (common, config, db, http) are below every capability.',
      from: { path: `^src/${FOUNDATION}/` },
      to: { path: '^src/[^/]+/', pathNot: `^src/${FOUNDATION}/` },
    },
  ],
  options: {
    includeOnly: '^src/',
    doNotFollow: { path: 'node_modules' },
    moduleSystems: ['es6'],
  },
};

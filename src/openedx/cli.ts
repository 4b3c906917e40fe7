import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadContent, type TrackDef } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { toolUrls } from '../lti/index.js';
import { OlxError, olxArchive, parseCourseKey } from './olx.js';

const USAGE = `Usage: npm run cli -- openedx olx --course-key course-v1:ORG+COURSE+RUN --out <file.tar.gz>
                                     [--lti-store <slug>] [--track <track id>] [--title <course title>]

  Writes the SPOC as an Open edX course export (Studio → Tools → Import): "Mon parcours" at the top, one
  section per week, one subsection per theme, one unit per module with its LTI 1.3 component preset
  (URLs from PUBLIC_URL, custom parameters, graded, names and roles on, deep linking off).
  --lti-store <slug>  components reference the reusable configuration "lti_store:<slug>" (openedx-ltistore)
                      instead of carrying the URLs: one client ID for the whole course.
`;

export interface OpenEdxCliIo {
  out(text: string): void;
  err(text: string): void;
}

/** `npm run cli -- openedx olx …`; returns the exit code (0 written, 1 content problem, 2 usage). */
export async function runOpenEdxCommand(
  args: string[],
  io: OpenEdxCliIo,
  config: Pick<Config, 'publicUrl' | 'contentDir'>,
): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'olx') {
    io.err(USAGE);
    return 2;
  }
  let values: { 'course-key'?: string; out?: string; 'lti-store'?: string; track?: string; title?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        'course-key': { type: 'string' },
        out: { type: 'string' },
        'lti-store': { type: 'string' },
        track: { type: 'string' },
        title: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!values['course-key'] || !values.out) {
    io.err(USAGE);
    return 2;
  }
  try {
    const courseKey = parseCourseKey(values['course-key']);
    const load = await loadContent(config.contentDir);
    if (!load.content) {
      io.err(`content in ${config.contentDir} has errors: run npm run content -- check\n`);
      return 1;
    }
    const tracks = load.content.tracks.map((t) => t.track);
    const track: TrackDef | undefined = values.track ? tracks.find((t) => t.id === values.track) : tracks[0];
    if (!track || (values.track === undefined && tracks.length > 1)) {
      io.err(
        values.track
          ? `unknown track "${values.track}" (known: ${tracks.map((t) => t.id).join(', ')})\n`
          : `several tracks: choose one with --track (${tracks.map((t) => t.id).join(', ')})\n`,
      );
      return 2;
    }
    const moduleTitles = new Map<string, string>();
    for (const m of load.content.modules) {
      if (m.track === track.id && m.manifest.fund === 'common' && m.manifest.branches.length === 0) {
        moduleTitles.set(`${m.manifest.theme}|${m.position}`, m.manifest.title);
      }
    }
    const urls = toolUrls(config.publicUrl);
    const archive = olxArchive({
      courseKey,
      track,
      tool: { launchUrl: urls.launchUrl, loginUrl: urls.loginUrl, keysetUrl: urls.keysetUrl },
      moduleTitles,
      ...(values['lti-store'] !== undefined ? { ltiStore: values['lti-store'] } : {}),
      ...(values.title !== undefined ? { title: values.title } : {}),
    });
    await writeFile(values.out, archive);
    io.out(
      `Wrote ${values.out} (${archive.length} bytes): ${values['course-key']}, track ${track.id}, ` +
        `${track.themes.reduce((n, t) => n + Math.max(1, t.modules), 0)} modules + Mon parcours` +
        (values['lti-store'] ? `, reusable configuration lti_store:${values['lti-store']}` : '') +
        '.\nImport it in Studio: Tools → Import.\n',
    );
    return 0;
  } catch (error) {
    if (error instanceof OlxError) {
      io.err(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

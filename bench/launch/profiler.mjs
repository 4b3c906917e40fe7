/**
 * In-process CPU profiling for the tools of the launch bench, driven by ./run.ts over IPC so that the
 * profile covers the measured window only (not the start, migrations or warm-up). Plain JavaScript: the
 * tools run on plain `node` (Émargement from its build in dist/), without the tsx loader.
 * `{ type: 'profile-start' }` starts it; `{ type: 'profile-stop', file }` writes a .cpuprofile (open it in
 * Chrome DevTools → Performance) and answers `{ type: 'profile-written', file }`.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

export function answerProfilerMessages() {
  let session = null;
  process.on('message', (message) => {
    if (message?.type === 'profile-start') {
      session = new Session();
      session.connect();
      const started = session;
      void started
        .post('Profiler.enable')
        .then(() => started.post('Profiler.setSamplingInterval', { interval: 200 }))
        .then(() => started.post('Profiler.start'));
    } else if (message?.type === 'profile-stop' && session && message.file) {
      const { file } = message;
      const current = session;
      session = null;
      void current
        .post('Profiler.stop')
        .then(({ profile }) => writeFile(file, JSON.stringify(profile)))
        .then(() => {
          current.disconnect();
          process.send?.({ type: 'profile-written', file });
        });
    }
  });
}

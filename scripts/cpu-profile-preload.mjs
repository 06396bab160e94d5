// `NODE_OPTIONS="--import file:///abs/scripts/cpu-profile-preload.mjs?dir=/abs/dir"`: the local
// cloud's region processes (the functions) write a V8 CPU profile into that directory
// when they exit (open it in Chrome DevTools). Node refuses --cpu-prof in NODE_OPTIONS; this is the
// same profile, started through the inspector. Other processes are left alone.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

// In the URL: the region processes get an environment of their own, NODE_OPTIONS passed on.
const dir = new URL(import.meta.url).searchParams.get('dir');
if (dir && process.argv[1]?.includes('region-process')) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // The same-thread session answers synchronously, so this runs to its end before the exit.
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      const name = `${process.env.VOLSNAP_REGION ?? 'region'}-${process.pid}.cpuprofile`;
      writeFileSync(join(dir, name), JSON.stringify(result.profile));
    });
  });
}

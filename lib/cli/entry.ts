// The CLI's entry point when bundled (scripts/build-cli.js); bin/volsnap.js runs the sources instead.
import { exitWhenFlushed, main } from './main.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
await main(process.argv);
exitWhenFlushed();

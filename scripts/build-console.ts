// `npm run build:console`: bundles the web console (console/src) and writes it into
// console/assets.generated.ts, which the console function serves from its own bundle.
import { writeFile } from 'node:fs/promises';
import { assetsModule, buildConsole } from '../console/build.ts';

const assets = await buildConsole();
await writeFile(new URL('../console/assets.generated.ts', import.meta.url), assetsModule(assets));
const kib = (text: string) => `${(Buffer.byteLength(text) / 1024).toFixed(1)} KiB`;
console.log(
  `console/assets.generated.ts: app.js ${kib(assets['app.js'].body)}, app.css ${kib(assets['app.css'].body)}, index.html ${kib(assets['index.html'].body)}`,
);

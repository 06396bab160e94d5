// One cold start, run by scripts/cold-start.ts in a fresh Node 22 process: the import of a bundle,
// then its first answer to an event. Prints one JSON line with both times (ms).
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const [file = '', exportName = 'handler', event = '{}'] = process.argv.slice(2);
const context = {
  awsRequestId: 'cold-start',
  functionName: 'cold-start',
  getRemainingTimeInMillis: () => 29_000,
};
const started = performance.now();
const module = await import(pathToFileURL(file).href);
const imported = performance.now();
let answer;
try {
  const result = await module[exportName](JSON.parse(event), context);
  answer = result?.statusCode ? `HTTP ${result.statusCode}` : 'returned';
} catch (error) {
  answer = `threw ${error instanceof Error ? error.name : typeof error}`;
}
const answered = performance.now();
console.log(JSON.stringify({ importMs: imported - started, answerMs: answered - imported, answer }));
process.exit(0); // a client's sockets or timers must not keep this measurement alive

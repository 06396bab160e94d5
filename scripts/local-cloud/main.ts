// `npm start`: the local two-region cloud, in the foreground until Ctrl-C.
import { parseArgs } from 'node:util';
import { DEFAULT_PORT_BASE, DEFAULT_REGIONS, type LocalCloud, startLocalCloud } from './cloud.ts';

const { values } = parseArgs({
  options: {
    fresh: { type: 'boolean', default: false },
    'data-dir': { type: 'string', default: '.volsnap' },
    'port-base': { type: 'string', default: String(DEFAULT_PORT_BASE) },
    regions: { type: 'string', default: DEFAULT_REGIONS.join(',') },
    verbose: { type: 'boolean', default: false },
    'no-schedules': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`Usage: npm start -- [--fresh] [--data-dir DIR] [--port-base N|auto] [--regions a,b] [--verbose] [--no-schedules]

Runs the volsnap local cloud: for each region its own S3 (s3rver), DynamoDB (DynamoDB Local) and
the functions of serverless.yml behind an HTTP API. Data stays in DIR (.volsnap) between runs;
--fresh wipes it. The scheduled functions (policies, reaper, expiry, GC) run on their rates unless
--no-schedules (tests drive them with \`volsnap admin run JOB\`). With VOLSNAP_RECORD_AWS_CALLS=DIR, every
S3, DynamoDB and SQS call the functions make is recorded in DIR (for the IAM check). Region i listens on N+10i (API), N+10i+1 (S3), N+10i+2 (DynamoDB), N+10i+3 (queue).`);
  process.exit(0);
}

const portBase = values['port-base'] === 'auto' ? 'auto' : Number(values['port-base']);
if (portBase !== 'auto' && !(Number.isInteger(portBase) && portBase > 0 && portBase < 65000)) {
  console.error(`--port-base must be a port number or 'auto', got '${values['port-base']}'.`);
  process.exit(2);
}

const started = Date.now();
let cloud: LocalCloud | undefined;
let shuttingDown = false;
const shutdown = async (code: number) => {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log('\nStopping the local cloud…');
  await cloud?.stop();
  process.exit(code);
};
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  console.log(`Starting the volsnap local cloud (${values.regions}; data in ${values['data-dir']})…`);
  cloud = await startLocalCloud({
    dataDir: values['data-dir'],
    regions: values.regions
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean),
    portBase,
    fresh: values.fresh,
    verbose: values.verbose,
    schedules: !values['no-schedules'],
    // The e2e suite sets it: the IAM check reads what the functions called (scripts/local-cloud/iam-check.ts).
    recordCallsTo: process.env.VOLSNAP_RECORD_AWS_CALLS || undefined,
    onChildExit: (name, code) => {
      console.error(`The local cloud lost ${name} (exit code ${code}); stopping.`);
      void shutdown(1);
    },
  });
} catch (error) {
  console.error(`The local cloud could not start: ${(error as Error).message}`);
  process.exit(1);
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
const { bundles, node } = cloud.functions;
const built = bundles.cached
  ? `from the cache, ${bundles.modules.length} bundles`
  : `${bundles.modules.length} bundles built in ${(bundles.ms / 1000).toFixed(1)} s`;
const lines = [
  `volsnap local cloud is ready in ${seconds} s.`,
  `  functions: the deployment's bundles (${built}) on Node ${node}, one module per function`,
  '',
];
for (const r of cloud.regions) {
  lines.push(`  ${r.name.padEnd(12)} API ${r.api}   (S3 ${r.s3}, DynamoDB ${r.dynamodb})`);
}
lines.push('', `  Console: ${cloud.regions[0]?.api}/console (sign in with a key below)`, '');
for (const [name, account] of Object.entries(cloud.config.accounts)) {
  lines.push(`  account ${name.padEnd(8)} ${account.accountId}   key ${account.apiKey}`);
}
const { aws } = cloud;
lines.push(
  '',
  `  EBS direct APIs: endpoint <API>/ebs (and <API>/ec2 for DescribeSnapshots), SigV4 key of account demo:`,
  `    access key id ${aws.accessKeyId}   secret ${aws.secretAccessKey}`,
  `    AWS profiles ${Object.keys(aws.profiles).join(', ')} in ${aws.configPath} (keys also in ${aws.credentialsPath}). Try:`,
  `    AWS_CONFIG_FILE=${aws.configPath} AWS_SHARED_CREDENTIALS_FILE=${aws.credentialsPath} aws --profile ${aws.profile} ebs start-snapshot --volume-size 1`,
  '',
  `CLI config: ${cloud.configPath}. Try: npx volsnap health --region ${cloud.regions.at(-1)?.name}`,
  'Ctrl-C stops everything.',
);
console.log(lines.join('\n'));

import { Command, InvalidArgumentError, Option } from 'commander';
import { ApiClient, ApiError, type Volume } from '../client/api-client.ts';
import { ConfigError, type ConfigFlags, resolveConfig } from '../client/config.ts';
import { VERSION } from '../config/runtime.ts';
import { printRecord, printTable } from './output.ts';
import { collectTag, formatSize, parseSize } from './units.ts';

interface GlobalOptions extends ConfigFlags {
  json?: boolean;
}

/** Builds the `volsnap` program. `io` is injectable so tests can run commands in-process. */
export function buildProgram(
  io: { out: (text: string) => void; err: (text: string) => void } = defaultIo(),
): Command {
  const program = new Command('volsnap')
    .description('Volume snapshots: incremental, sparse, verifiable, across regions and accounts.')
    .version(VERSION)
    .addOption(new Option('--region <region>', 'region to talk to').env('VOLSNAP_REGION'))
    .addOption(
      new Option('--endpoint <url>', 'API endpoint (default: from the config file)').env('VOLSNAP_ENDPOINT'),
    )
    .addOption(
      new Option('--account <name>', 'account from the config file to act as').env('VOLSNAP_ACCOUNT'),
    )
    .option('--config <path>', 'config file (default: .volsnap/config.json, then ~/.volsnap/config.json)')
    .option('--json', 'print JSON instead of tables')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  const client = () => {
    const options = program.opts<GlobalOptions>();
    const config = resolveConfig(options);
    return {
      api: new ApiClient({ endpoint: config.endpoint, apiKey: config.apiKey }),
      config,
      json: options.json ?? false,
    };
  };

  program
    .command('health')
    .description("show which region answers and the service's version")
    .action(async () => {
      const { api, json } = client();
      printRecord(io.out, await api.health(), json);
    });

  const volume = program.command('volume').description('register, list, show and delete volumes');
  volume
    .command('create')
    .description('register a volume (its bytes stay on your host, or in the image object given)')
    .requiredOption('--name <name>', 'a name for the volume')
    .requiredOption(
      '--size <size>',
      'its size: bytes or 64MiB, 10GiB… (a multiple of 512 KiB)',
      option(parseSize),
    )
    .option('--tag <key=value>', 'a tag (repeat for more)', option(collectTag))
    .option('--image <s3://bucket/key>', 'the object holding the bytes of an image-backed volume')
    .action(async (options: { name: string; size: number; tag?: Record<string, string>; image?: string }) => {
      const { api, json } = client();
      const created = await api.createVolume({
        name: options.name,
        sizeBytes: options.size,
        tags: options.tag,
        imageUri: options.image,
      });
      printRecord(io.out, json ? created : volumeRecord(created), json);
    });
  volume
    .command('list')
    .description('list your volumes in this region, newest first')
    .option('--name <prefix>', 'only volumes whose name starts with this')
    .option('--tag <key=value>', 'only volumes with this tag (repeat to require several)', option(collectTag))
    .option('--limit <n>', 'at most this many', option(positiveInteger))
    .action(async (options: { name?: string; tag?: Record<string, string>; limit?: number }) => {
      const { api, json } = client();
      const rows = [];
      for await (const v of api.allVolumes({ name: options.name, tags: options.tag })) {
        if (options.limit !== undefined && rows.length >= options.limit) break;
        rows.push(v);
      }
      printTable(
        io.out,
        json
          ? rows
          : rows.map((v) => ({
              id: v.volumeId,
              name: v.name,
              size: formatSize(v.sizeBytes),
              created: v.createdAt,
              tags: formatTags(v.tags),
            })),
        ['id', 'name', 'size', 'created', 'tags'],
        json,
      );
    });
  volume
    .command('show')
    .description("show a volume's fields")
    .argument('<volume-id>')
    .action(async (volumeId: string) => {
      const { api, json } = client();
      const found = await api.getVolume(volumeId);
      printRecord(io.out, json ? found : volumeRecord(found), json);
    });
  volume
    .command('delete')
    .description('delete a volume (refused while it has snapshots)')
    .argument('<volume-id>')
    .action(async (volumeId: string) => {
      const { api, json } = client();
      await api.deleteVolume(volumeId);
      if (json) io.out(`${JSON.stringify({ deleted: volumeId })}\n`);
      else io.out(`Deleted ${volumeId}.\n`);
    });

  return program;
}

/** Turns a value parser's error into commander's, so the CLI prints it as a usage error. */
function option<T, P>(parse: (value: string, previous: P) => T) {
  return (value: string, previous: P): T => {
    try {
      return parse(value, previous);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`'${value}' is not a positive whole number.`);
  return n;
}

function volumeRecord(v: Volume) {
  return {
    id: v.volumeId,
    name: v.name,
    size: `${formatSize(v.sizeBytes)} (${v.sizeBytes} bytes)`,
    region: v.region,
    owner: v.accountId,
    created: v.createdAt,
    tags: formatTags(v.tags),
    image: v.imageUri,
    'from snapshot': v.sourceSnapshotId,
  };
}

function formatTags(tags: Record<string, string>): string {
  const text = Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return text || '-';
}

function defaultIo() {
  return {
    out: (text: string) => process.stdout.write(text),
    err: (text: string) => process.stderr.write(text),
  };
}

/** Runs the CLI; exits 1 with the API's code and message on failure (2 for a configuration problem). */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const json = program.opts<GlobalOptions>().json ?? false;
    if (error instanceof ApiError) {
      if (json)
        process.stderr.write(
          `${JSON.stringify({ error: error.code, message: error.message, requestId: error.requestId, details: error.details })}\n`,
        );
      else
        process.stderr.write(
          `error: ${error.code}: ${error.message}${error.requestId ? ` (request ${error.requestId})` : ''}\n`,
        );
      process.exitCode = 1;
    } else if (error instanceof ConfigError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      throw error;
    }
  }
}

import { Argument, type Command, InvalidArgumentError } from 'commander';
import type { ApiClient, Instance } from '../client/api-client.ts';
import { option, wholeNumber } from './args.ts';
import { deletedRecord, printRecord, printTable } from './output.ts';

type Io = { out: (text: string) => void; err: (text: string) => void };
type Client = () => { api: ApiClient; json: boolean };

/** Repeated `--volume vol-…=/dev/vda`: in the order given, which is the boot order. */
export function collectAttachment(
  text: string,
  list: { volumeId: string; device: string }[] = [],
): { volumeId: string; device: string }[] {
  const at = text.indexOf('=');
  if (at <= 0 || at === text.length - 1)
    throw new InvalidArgumentError(`'${text}' is not a volume: write vol-…=/dev/vda.`);
  return [...list, { volumeId: text.slice(0, at), device: text.slice(at + 1) }];
}

/** Repeated `--property key=value` (the value may contain `=`). */
export function collectProperty(
  text: string,
  properties: Record<string, string> = {},
): Record<string, string> {
  const at = text.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`'${text}' is not a property: write key=value.`);
  return { ...properties, [text.slice(0, at)]: text.slice(at + 1) };
}

/** `volsnap instance register|list|show|attach|detach|mark|delete`. */
export function addInstanceCommands(program: Command, client: Client, io: Io): void {
  const instance = program
    .command('instance')
    .description('instances: their volumes (devices, boot order) and properties, to take images of');

  instance
    .command('register')
    .description('register an instance with its volumes (each attached to one instance at a time)')
    .requiredOption('--name <name>', 'a name for the instance')
    .option(
      '--volume <volume-id=device>',
      'an attached volume and its device, e.g. vol-…=/dev/vda (repeat; boot order as given)',
      collectAttachment,
    )
    .option(
      '--property <key=value>',
      'a property: min_disk, min_ram, base_image_ref, licence_type… (repeat for more)',
      collectProperty,
    )
    .option('--stopped', 'mark it stopped (default: running)')
    .action(
      async (options: {
        name: string;
        volume?: { volumeId: string; device: string }[];
        property?: Record<string, string>;
        stopped?: boolean;
      }) => {
        const { api, json } = client();
        const created = await api.registerInstance({
          name: options.name,
          volumes: (options.volume ?? []).map((v, bootIndex) => ({ ...v, bootIndex })),
          properties: options.property,
          state: options.stopped ? 'stopped' : 'running',
        });
        printRecord(io.out, json ? created : instanceRecord(created), json);
      },
    );

  instance
    .command('list')
    .description('your instances in this region, newest first')
    .action(async () => {
      const { api, json } = client();
      const rows: Instance[] = [];
      for await (const i of api.allInstances()) rows.push(i);
      printTable(
        io.out,
        json
          ? rows
          : rows.map((i) => ({
              id: i.instanceId,
              name: i.name,
              state: i.state,
              volumes: i.volumes.map((v) => `${v.device}=${v.volumeId}`),
              created: i.createdAt,
            })),
        ['id', 'name', 'state', 'volumes', 'created'],
        json,
      );
    });

  instance
    .command('show')
    .argument('<instance-id>')
    .description("an instance's volumes, properties and state")
    .action(async (instanceId: string) => {
      const { api, json } = client();
      const found = await api.getInstance(instanceId);
      printRecord(io.out, json ? found : instanceRecord(found), json);
    });

  instance
    .command('attach')
    .argument('<instance-id>')
    .argument('<volume-id>')
    .description('attach a volume (yours, in this region, attached to no other instance)')
    .requiredOption('--device <device>', 'the device it appears as, e.g. /dev/vdb')
    .option('--boot-index <n>', 'its place in the boot order (default: last)', option(wholeNumber))
    .action(async (instanceId: string, volumeId: string, options: { device: string; bootIndex?: number }) => {
      const { api, json } = client();
      const updated = await api.attachVolume(instanceId, volumeId, {
        device: options.device,
        ...(options.bootIndex !== undefined ? { bootIndex: options.bootIndex } : {}),
      });
      printRecord(io.out, json ? updated : instanceRecord(updated), json);
    });

  instance
    .command('detach')
    .argument('<instance-id>')
    .argument('<volume-id>')
    .description('detach a volume (it stays, with its snapshots)')
    .action(async (instanceId: string, volumeId: string) => {
      const { api, json } = client();
      const updated = await api.detachVolume(instanceId, volumeId);
      printRecord(io.out, json ? updated : instanceRecord(updated), json);
    });

  instance
    .command('mark')
    .argument('<instance-id>')
    .addArgument(new Argument('<state>', 'running or stopped').choices(['running', 'stopped']))
    .description('mark an instance running or stopped (an image of a running instance is crash-consistent)')
    .action(async (instanceId: string, state: 'running' | 'stopped') => {
      const { api, json } = client();
      const updated = await api.updateInstance(instanceId, { state });
      printRecord(io.out, json ? updated : instanceRecord(updated), json);
    });

  instance
    .command('delete')
    .argument('<instance-id>')
    .description('delete an instance (its volumes are detached and stay; so do its images)')
    .action(async (instanceId: string) => {
      const { api, json } = client();
      await api.deleteInstance(instanceId);
      io.out(
        json
          ? `${JSON.stringify(deletedRecord('instanceId', instanceId))}\n`
          : `Deleted ${instanceId}; its volumes stay.\n`,
      );
    });
}

export function instanceRecord(i: Instance) {
  return {
    id: i.instanceId,
    name: i.name,
    state: i.state,
    volumes:
      i.volumes.length > 0
        ? i.volumes.map((v) => `${v.device}=${v.volumeId} (boot ${v.bootIndex})`).join(', ')
        : 'none',
    properties:
      Object.entries(i.properties)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '-',
    region: i.region,
    created: i.createdAt,
    updated: i.updatedAt,
  };
}

import { Argument, type Command, InvalidArgumentError } from 'commander';
import type { Instance, InstanceState } from '../../client/api-client.ts';
import { option, wholeNumber } from '../args.ts';
import type { CliContext } from '../context.ts';
import { printAnswer, printRows } from '../output.ts';
import { firstOf } from '../reading.ts';
import { addDeleteCommand, addRecordCommand } from '../record-commands.ts';
import { splitPair } from '../units.ts';

/** Repeated `--volume vol-…=/dev/vda`: in the order given, which is the boot order. */
export function collectAttachment(
  text: string,
  list: { volumeId: string; device: string }[] = [],
): { volumeId: string; device: string }[] {
  const pair = splitPair(text, true);
  if (!pair) throw new InvalidArgumentError(`'${text}' is not a volume: write vol-…=/dev/vda.`);
  return [...list, { volumeId: pair[0], device: pair[1] }];
}

/** Repeated `--property key=value` (the value may contain `=`). */
export function collectProperty(
  text: string,
  properties: Record<string, string> = {},
): Record<string, string> {
  const pair = splitPair(text);
  if (!pair) throw new InvalidArgumentError(`'${text}' is not a property: write key=value.`);
  return { ...properties, [pair[0]]: pair[1] };
}

/** `volsnap instance register|list|show|attach|detach|mark|delete`. */
export function addInstanceCommands(program: Command, ctx: CliContext): void {
  const instance = program
    .command('instance')
    .description('instances: their volumes (devices, boot order) and properties, to take images of');
  addRegister(instance, ctx);
  addList(instance, ctx);
  addRecordCommand(instance, ctx, {
    name: 'show',
    description: "an instance's volumes, properties and state",
    args: ['<instance-id>'],
    call: (api, instanceId) => api.getInstance(instanceId),
    view: instanceRecord,
  });
  instance
    .command('attach')
    .argument('<instance-id>')
    .argument('<volume-id>')
    .description('attach a volume (yours, in this region, attached to no other instance)')
    .requiredOption('--device <device>', 'the device it appears as, e.g. /dev/vdb')
    .option('--boot-index <n>', 'its place in the boot order (default: last)', option(wholeNumber))
    .action(async (instanceId: string, volumeId: string, options: { device: string; bootIndex?: number }) => {
      const { api, json } = ctx.client();
      const updated = await api.attachVolume(instanceId, volumeId, {
        device: options.device,
        ...(options.bootIndex !== undefined ? { bootIndex: options.bootIndex } : {}),
      });
      printAnswer(ctx.io.out, json, updated, instanceRecord);
    });
  addRecordCommand(instance, ctx, {
    name: 'detach',
    description: 'detach a volume (it stays, with its snapshots)',
    args: ['<instance-id>', '<volume-id>'],
    call: (api, instanceId, volumeId) => api.detachVolume(instanceId, volumeId),
    view: instanceRecord,
  });
  addRecordCommand(instance, ctx, {
    name: 'mark',
    description: 'mark an instance running or stopped (an image of a running instance is crash-consistent)',
    args: ['<instance-id>', new Argument('<state>', 'running or stopped').choices(['running', 'stopped'])],
    call: (api, instanceId, state) => api.updateInstance(instanceId, { state: state as InstanceState }),
    view: instanceRecord,
  });
  addDeleteCommand(instance, ctx, {
    description: 'delete an instance (its volumes are detached and stay; so do its images)',
    arg: '<instance-id>',
    idField: 'instanceId',
    remove: (api, instanceId) => api.deleteInstance(instanceId),
    done: (instanceId) => `Deleted ${instanceId}; its volumes stay.\n`,
  });
}

function addRegister(instance: Command, ctx: CliContext): void {
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
        const { api, json } = ctx.client();
        const created = await api.registerInstance({
          name: options.name,
          volumes: (options.volume ?? []).map((v, bootIndex) => ({ ...v, bootIndex })),
          properties: options.property,
          state: options.stopped ? 'stopped' : 'running',
        });
        printAnswer(ctx.io.out, json, created, instanceRecord);
      },
    );
}

function addList(instance: Command, ctx: CliContext): void {
  instance
    .command('list')
    .description('your instances in this region, newest first')
    .action(async () => {
      const { api, json } = ctx.client();
      const rows = await firstOf(api.allInstances());
      printRows(
        ctx.io.out,
        json,
        rows,
        (i) => ({
          id: i.instanceId,
          name: i.name,
          state: i.state,
          volumes: i.volumes.map((v) => `${v.device}=${v.volumeId}`),
          created: i.createdAt,
        }),
        ['id', 'name', 'state', 'volumes', 'created'],
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

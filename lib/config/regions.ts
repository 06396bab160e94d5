import { VolsnapError } from '../core/shared/errors.ts';
import * as z from '../core/shared/schema.ts';

/**
 * One region of a volsnap deployment, as the region registry names it. Endpoints are absent on AWS
 * (the SDK's defaults apply) and point at the emulators in the local cloud.
 */
export const RegionEntrySchema = z.object({
  name: z.string().check(z.minLength(1)),
  /** Base URL of the region's HTTP API. */
  api: z.optional(z.url()),
  bucket: z.string().check(z.minLength(3)),
  table: z.string().check(z.minLength(3)),
  queueUrl: z.optional(z.url()),
  s3Endpoint: z.optional(z.url()),
  dynamodbEndpoint: z.optional(z.url()),
  sqsEndpoint: z.optional(z.url()),
  /** Path-style S3 addressing: the local emulator needs it; AWS accepts it. */
  s3ForcePathStyle: z.optional(z.boolean()),
});
export type RegionEntry = z.infer<typeof RegionEntrySchema>;

// In the registry file the key names the region; an entry may repeat it.
export const RegionRegistrySchema = z.record(
  z.string(),
  z.extend(RegionEntrySchema, { name: z.optional(z.string()) }),
);
export type RegionRegistryData = z.infer<typeof RegionRegistrySchema>;

/** Which regions exist and how to reach each. Regions know each other only through it. */
export class RegionRegistry {
  readonly #entries: Map<string, RegionEntry>;

  constructor(entries: Iterable<RegionEntry>) {
    this.#entries = new Map([...entries].map((entry) => [entry.name, entry]));
  }

  /** The region's entry, or `region.unknown` (400) naming the regions that do exist. */
  get(name: string): RegionEntry {
    const entry = this.#entries.get(name);
    if (!entry) {
      throw new VolsnapError(
        'region.unknown',
        `Unknown region '${name}'. Known regions: ${this.names().join(', ')}.`,
        {
          details: { region: name, known: this.names() },
        },
      );
    }
    return entry;
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  names(): string[] {
    return [...this.#entries.keys()].sort();
  }

  toJSON(): RegionRegistryData {
    return Object.fromEntries(this.#entries);
  }

  /** Parses registry JSON text (the `VOLSNAP_REGIONS` variable or `infra/regions.json`). */
  static parse(text: string, source: string): RegionRegistry {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (cause) {
      throw new VolsnapError('request.invalid', `The region registry in ${source} is not valid JSON.`, {
        cause,
      });
    }
    const parsed = RegionRegistrySchema.safeParse(data);
    if (!parsed.success) {
      throw new VolsnapError(
        'request.invalid',
        `The region registry in ${source} is invalid: ${z.describeIssues(parsed.error)}`,
      );
    }
    return new RegionRegistry(Object.entries(parsed.data).map(([name, entry]) => ({ ...entry, name })));
  }
}

import { createS3Client } from '../adapters/aws-clients.ts';
import { S3ObjectStore } from '../adapters/s3/objects.ts';
import type { ObjectStore } from '../core/ports/objects.ts';
import type { PortContext, PortSet } from '../root.ts';

/** A region's S3 client, one per region and container. */
function s3Of(context: PortContext) {
  return context.shared(`s3:${context.name}`, () =>
    createS3Client(context.config.registry.get(context.name)),
  );
}

/** A region's bucket, and stores over the other buckets it reads or writes (images, export targets). */
export const objectPorts: PortSet = {
  objects: (context) => new S3ObjectStore(s3Of(context), context.config.registry.get(context.name).bucket),
  objectsIn: (context) => {
    const own = context.config.registry.get(context.name).bucket;
    const stores = new Map<string, ObjectStore>();
    return (bucket) => {
      if (bucket === own) return context.ports.objects;
      let store = stores.get(bucket);
      if (!store) {
        store = new S3ObjectStore(s3Of(context), bucket);
        stores.set(bucket, store);
      }
      return store;
    };
  },
};

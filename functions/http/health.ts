import { publicHttpHandler } from '../../lib/http/stack.ts';
import { runtime } from '../../lib/root.ts';

/** `GET /v1/health`: which region answers, and which version of volsnap. No authentication. */
export const handler = publicHttpHandler({}, async () => {
  const { config } = runtime();
  return { body: { region: config.region.name, version: config.version, status: 'ok' } };
});

import { publicHttpHandler } from '../../lib/http/stack.ts';
import { runtime } from '../../lib/root.ts';

/**
 * `GET /v1/health`: which region answers, which version of volsnap, and the Node version of the
 * function that answered (the local cloud runs the bundles on Lambda's Node major). No authentication.
 */
export const handler = publicHttpHandler({}, async () => {
  const { config } = runtime();
  return {
    body: {
      region: config.region.name,
      version: config.version,
      status: 'ok',
      runtime: { node: process.version },
    },
  };
});

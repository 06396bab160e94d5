/**
 * The validation library, configured once: zod's tree-shakable "mini" build with English messages.
 * Import it as `import * as z from '…/core/schema.ts'` (a namespace import that esbuild can shake:
 * a Lambda bundle gains ~20 KB instead of ~450 KB with the classic build or a re-exported object).
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';

/** One line per issue, `path: message`, for error messages shown to users. */
export function describeIssues(error: {
  issues: readonly { path: readonly PropertyKey[]; message: string }[];
}): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : ''}${issue.message}`)
    .join('; ');
}

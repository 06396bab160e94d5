/**
 * The validation library, configured once: zod's tree-shakable "mini" build with English messages.
 * Import it as `import * as z from '…/core/shared/schema.ts'` (a namespace import that esbuild can shake:
 * a Lambda bundle gains ~20 KB instead of ~450 KB with the classic build or a re-exported object).
 */
import { config, superRefine } from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { describeUnprintable, findUnprintableIn } from './text.ts';

config(en());

export * from 'zod/mini';

/**
 * The one rule for text in requests: no string anywhere in the value (keys of records included)
 * holds a control character, DEL or a bidirectional override (lib/core/shared/text.ts). The issue names
 * the field, the character and its position. Every route's body and query are checked with it.
 */
export const printable = superRefine((value: unknown, ctx) => {
  const found = findUnprintableIn(value);
  if (found)
    ctx.addIssue({ code: 'custom', message: describeUnprintable(found), path: found.path, input: value });
});

/** One line per issue, `path: message`, for error messages shown to users. */
export function describeIssues(error: {
  issues: readonly { path: readonly PropertyKey[]; message: string }[];
}): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : ''}${issue.message}`)
    .join('; ');
}

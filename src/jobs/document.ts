import { z } from 'zod';
import { JobError } from './errors.js';

/** What a job needs from a character document, validated (CONTRACT §1). */
export interface JobSpec {
  characterId: string;
  userId: string;
  imageUrl: string;
  name: string | undefined;
}

/**
 * A path segment taken from a document: it goes into a Storage object name, so anything
 * that could leave its folder or confuse a reader of the path is refused.
 */
const segment = z
  .string()
  .min(1, 'is empty')
  .max(128, 'is longer than 128 characters')
  .refine((s) => s !== '.' && s !== '..', 'is a relative path segment')
  .refine((s) => !/[/\\]/.test(s), 'contains a slash')
  // C0/C1 controls, and the invisible format characters (bidi overrides, zero-width) and
  // line separators that would make a path read differently from what it is.
  .refine((s) => !/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(s), 'contains a control character');

const documentSchema = z.object({
  core: z.looseObject({ name: z.string().optional() }).optional(),
  meta: z.looseObject({ userId: segment }),
  visuals: z.looseObject({ imageUrl: z.string().min(1, 'is empty').max(4096, 'is too long') }),
});

export function parseJobDocument(characterId: string, data: unknown): JobSpec {
  const id = segment.safeParse(characterId);
  if (!id.success) {
    throw invalid('id', id.error.issues[0]?.message);
  }
  // The issue's input tells a missing field from one of the wrong type.
  const parsed = documentSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(issue?.path.join('.') || 'document', issue && reasonOf(issue));
  }
  return {
    characterId,
    userId: parsed.data.meta.userId,
    imageUrl: parsed.data.visuals.imageUrl,
    name: parsed.data.core?.name,
  };
}

/** A short, user-safe reason (zod's own messages say "Expected string, received number"). */
function reasonOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    return issue.input === undefined ? 'is missing' : `must be ${article(issue.expected)}`;
  }
  return issue.message;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function invalid(field: string, reason = 'is invalid'): JobError {
  const label =
    field === 'id'
      ? 'The character id'
      : field === 'document'
        ? 'The document'
        : `The field ${field}`;
  return new JobError('INVALID_DOCUMENT', { message: `${label} ${reason}.`, detail: field });
}

/** CONTRACT §1: where the result of a job is stored. */
export function showcasePath(spec: Pick<JobSpec, 'userId' | 'characterId'>): string {
  return `showcase-images/${spec.userId}/${spec.characterId}/showcase_${spec.characterId}.png`;
}

/** Whether a value is a valid path segment (a `meta.userId` a usage document may be named by). */
export function isPathSegment(value: unknown): value is string {
  return segment.safeParse(value).success;
}

/**
 * Which objects of the bucket a character's `gs://` source may name (CONTRACT §1,
 * SOURCE_GS_PATHS). The worker reads `gs://` with admin rights, so without this any user
 * could have it publish another user's private upload (a confused deputy).
 *
 * A pattern is a `/`-separated object name in which a segment may be:
 *  - `**`: any number of folders, as in .gitignore: zero or more segments, except at the end
 *    (`a/**`), where it is everything inside the folder (one or more);
 *  - text with `*` (any characters but `/`) and `{userId}` (the document's `meta.userId`,
 *    exactly) in it: `*`, `{userId}`, `avatar-{userId}.*`.
 * Matching is case-sensitive, as object names are.
 */

/** The owner is one whole folder of the path: `raw-uploads/{userId}/...`, `{userId}/...`. */
export const DEFAULT_GS_PATHS: readonly string[] = ['**/{userId}/**'];

/** The worker's own folders (results, checkpoints, result cache): never a source. */
export const WORKER_PREFIXES: readonly string[] = [
  'showcase-images/',
  'showcase-work/',
  'showcase-cache/',
];

/** Why a pattern is unusable, or undefined when it is fine (config validation). */
export function gsPatternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'is empty';
  if (pattern.startsWith('/') || pattern.endsWith('/')) return 'starts or ends with /';
  for (const segment of pattern.split('/')) {
    if (segment === '') return 'has an empty segment (//)';
    if (segment === '.' || segment === '..') return 'has a . or .. segment';
    if (segment !== '**' && segment.includes('**')) return '** must be a whole segment';
    const rest = segment.replaceAll('{userId}', '');
    if (/[{}]/.test(rest)) return 'has a placeholder other than {userId}';
  }
  return undefined;
}

/** Whether `path` (a decoded, canonical object name) matches `pattern` for this owner. */
export function matchesGsPattern(pattern: string, path: string, userId: string): boolean {
  if (gsPatternProblem(pattern) !== undefined || userId === '') return false;
  const want = pattern.split('/');
  const have = path.split('/');
  if (have.some((s) => s === '')) return false;
  return matchSegments(want, 0, have, 0, userId);
}

function matchSegments(
  want: string[],
  w: number,
  have: string[],
  h: number,
  userId: string,
): boolean {
  if (w === want.length) return h === have.length;
  const segment = want[w] as string;
  if (segment === '**') {
    const last = w === want.length - 1;
    if (last) return have.length - h >= 1;
    for (let skip = h; skip <= have.length; skip += 1) {
      if (matchSegments(want, w + 1, have, skip, userId)) return true;
    }
    return false;
  }
  if (h === have.length) return false;
  return (
    segmentRegExp(segment, userId).test(have[h] as string) &&
    matchSegments(want, w + 1, have, h + 1, userId)
  );
}

function segmentRegExp(segment: string, userId: string): RegExp {
  const body = segment
    .split('{userId}')
    .map((text) => text.split('*').map(escapeRegExp).join('[^/]*'))
    .join(escapeRegExp(userId));
  return new RegExp(`^${body}$`, 'u');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export type GsSourceVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Whether an owner's character may use this object as its source: never one of the worker's
 * own folders, and only when a pattern binds it to the owner.
 */
export function judgeGsSource(
  path: string,
  ownerId: string | undefined,
  patterns: readonly string[],
): GsSourceVerdict {
  const prefix = WORKER_PREFIXES.find((p) => path.startsWith(p));
  if (prefix) return { ok: false, reason: `gs object under the worker's ${prefix}` };
  if (!ownerId) return { ok: false, reason: 'gs object without an owner to bind it to' };
  if (patterns.some((p) => matchesGsPattern(p, path, ownerId))) return { ok: true };
  return { ok: false, reason: "gs object outside the owner's paths" };
}

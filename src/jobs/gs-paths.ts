/**
 * Which objects of the bucket a character's `gs://` source may name (CONTRACT §1,
 * SOURCE_GS_PATHS). The worker reads `gs://` with admin rights, so without this any user
 * could have it publish another user's private upload (a confused deputy).
 *
 * A pattern is a `/`-separated object name in which a segment may be:
 *  - `**`: any number of folders, as in .gitignore: zero or more segments, except at the end
 *    (`a/**`), where it is everything inside the folder (one or more);
 *  - `{userId}` alone: the document's `meta.userId`, exactly;
 *  - text with `*` (any characters but `/`): `*`, `*.png`, `avatars`.
 * Matching is case-sensitive, as object names are.
 */

/**
 * Where the app uploads and where the shipped `storage.rules` let only the owner read and
 * write: nothing the owner could not read themselves (not `moderation/{uid}/...`, not
 * `users/B/blocked/{uid}/...`, which a pattern with `{userId}` anywhere in the path reaches).
 */
export const DEFAULT_GS_PATHS: readonly string[] = ['raw-uploads/{userId}/**'];

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
    if (segment !== '{userId}' && rest !== segment) {
      // The other characters can spell the rest of another user's id: with `avatar-{userId}.*`,
      // user `bob` matches `avatar-bob.smith.png`, user `bob.smith`'s picture.
      return (
        'puts {userId} in a segment with other characters: they can complete another ' +
        "user's id (with avatar-{userId}.*, user bob could read avatar-bob.smith.png); " +
        'make {userId} a whole folder, e.g. raw-uploads/{userId}/**'
      );
    }
  }
  return undefined;
}

/**
 * Whether the pattern names no owner (no `{userId}`): every user may then name any object it
 * matches as their source, so it is allowed only with SOURCE_GS_ALLOW_SHARED_PATHS=true.
 */
export function isSharedGsPattern(pattern: string): boolean {
  return !pattern.split('/').includes('{userId}');
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
    matchesSegment(segment, have[h] as string, userId) &&
    matchSegments(want, w + 1, have, h + 1, userId)
  );
}

/** gsPatternProblem allows `{userId}` only as a whole segment: the owner's id, exactly. */
function matchesSegment(segment: string, name: string, userId: string): boolean {
  if (segment === '{userId}') return name === userId;
  const body = segment.split('*').map(escapeRegExp).join('[^/]*');
  return new RegExp(`^${body}$`, 'u').test(name);
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

import winston from 'winston';

const REDACTED = '[REDACTED]';

/**
 * The forms a secret takes when it leaks: as is, percent-encoded (quoted inside a URL) and
 * JSON-escaped (a PEM's newlines as `\n`, inside a serialized body). Longest first, so a whole
 * key is replaced before the lines it contains.
 */
export function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of a secret in a string. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

function scrubValue(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === 'string') return scrub(value, secrets);
  if (value === null || typeof value !== 'object') return value;
  // Too deep to walk: flatten it, so nothing escapes the scrub (a cycle cannot be flattened).
  if (depth > 6) return scrub(safeStringify(value), secrets);
  if (value instanceof Error) {
    return { name: value.name, message: scrub(value.message, secrets) };
  }
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[scrub(k, secrets)] = scrubValue(v, secrets, depth + 1);
  return out;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '[unserializable]';
  }
}

/**
 * A winston format that scrubs secrets from the message and every field. The code never logs
 * secrets on purpose; this catches the accidents (an SDK error quoting a header, say).
 */
export function redactSecrets(list: readonly string[]): winston.Logform.Format {
  const secrets = secretForms(list);
  return winston.format((info) => {
    if (secrets.length === 0) return info;
    for (const key of Object.keys(info)) {
      const value = scrubValue(info[key], secrets, 0);
      const safeKey = scrub(key, secrets);
      if (safeKey !== key) delete info[key];
      info[safeKey] = value;
    }
    return info;
  })();
}

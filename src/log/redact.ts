import winston from 'winston';

const REDACTED = '[REDACTED]';

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
  // Too deep to walk: flatten it, so nothing escapes the scrub.
  if (depth > 6) return scrub(JSON.stringify(value) ?? '', secrets);
  if (value instanceof Error) {
    return { name: value.name, message: scrub(value.message, secrets) };
  }
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubValue(v, secrets, depth + 1);
  return out;
}

/**
 * A winston format that scrubs secrets from the message and every field. The code never logs
 * secrets on purpose; this catches the accidents (an SDK error quoting a header, say).
 */
export function redactSecrets(secrets: readonly string[]): winston.Logform.Format {
  return winston.format((info) => {
    if (secrets.length === 0) return info;
    for (const key of Object.keys(info)) {
      info[key] = scrubValue(info[key], secrets, 0);
    }
    return info;
  })();
}

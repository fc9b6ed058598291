/** The fields of a Google service account key the worker uses. */
export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
}

/**
 * Reads FIREBASE_SERVICE_ACCOUNT_KEY: raw JSON, or base64 of it (platforms mangle newlines in
 * multi-line values, so base64 is the safe way to paste one). Messages never echo the value.
 */
export function parseServiceAccount(value: string): ServiceAccount | undefined {
  const text = value.trim();
  if (!text) return undefined;
  const json = text.startsWith('{') ? text : Buffer.from(text, 'base64').toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('is neither JSON nor base64-encoded JSON');
  }
  const key = parsed as Partial<Record<keyof ServiceAccount, unknown>> | null;
  const missing = (['project_id', 'client_email', 'private_key'] as const).filter(
    (field) => typeof key?.[field] !== 'string' || !key[field],
  );
  if (missing.length > 0) throw new Error(`is missing ${missing.join(', ')}`);
  return key as ServiceAccount;
}

/** Every secret string a log line or written error must never contain. */
export function secretsOf(config: {
  clipdrop: { apiKey: string };
  firebase: { serviceAccount: ServiceAccount | undefined; serviceAccountKey: string };
  console?: { token: string };
}): string[] {
  const secrets = [
    config.clipdrop.apiKey,
    config.firebase.serviceAccountKey,
    config.console?.token ?? '',
  ];
  const pk = config.firebase.serviceAccount?.private_key;
  if (pk) {
    secrets.push(pk);
    // Each line of the PEM body too: a partial leak is still a leak.
    secrets.push(
      ...pk.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----')),
    );
  }
  return secrets.filter((s) => s.length >= 6);
}

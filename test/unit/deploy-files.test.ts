import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { schema } from '../../src/config/schema.js';
import { parseYaml } from '../support/mini-yaml.js';

const read = (path: string) => readFileSync(path, 'utf8');

/** glibc reads these at process start: every way of starting the worker sets them. */
const GLIBC_MALLOC = 'MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072';
/** V8's young generation capped on every line (Node 24's grows to 64 MB): a start flag. */
const NODE_FLAGS = '--max-semi-space-size=4';

/** Every env name of the convict schema. */
function schemaEnvNames(node: unknown = schema, out = new Set<string>()): Set<string> {
  if (node && typeof node === 'object') {
    const env = (node as { env?: unknown }).env;
    if (typeof env === 'string') out.add(env);
    else for (const child of Object.values(node)) schemaEnvNames(child, out);
  }
  return out;
}

/** What loadConfig itself refuses to start without, outside the emulators. */
const REQUIRED = ['FIREBASE_SERVICE_ACCOUNT_KEY', 'STORAGE_BUCKET', 'CLIPDROP_API_KEY'];

/** Placeholder values an operator would type for the secrets and names. */
const TYPED: Record<string, string> = {
  FIREBASE_SERVICE_ACCOUNT_KEY: Buffer.from(
    JSON.stringify({
      project_id: 'my-app',
      client_email: 'worker@my-app.iam.gserviceaccount.com',
      private_key: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n',
    }),
  ).toString('base64'),
  STORAGE_BUCKET: 'my-app.appspot.com',
  CLIPDROP_API_KEY: 'cd-live-key-0123456789',
  GOOGLE_CLOUD_PROJECT: 'my-app',
  SOURCE_ALLOWED_HOSTS: 'images.example.com',
};

describe('app.json (Heroku button)', () => {
  const app = JSON.parse(read('app.json')) as {
    formation: Record<string, { quantity: number }>;
    env: Record<
      string,
      { description?: string; value?: string; required?: boolean; generator?: string }
    >;
    buildpacks?: Array<{ url: string }>;
  };

  it('runs one worker dyno and one web dyno (the operator console)', () => {
    expect(app.formation).toEqual({
      worker: expect.objectContaining({ quantity: 1 }) as unknown,
      web: expect.objectContaining({ quantity: 1 }) as unknown,
    });
    expect(app.buildpacks).toEqual([{ url: 'heroku/nodejs' }]);
  });

  it("generates the console's token: never a typed or default value", () => {
    expect(app.env.CONSOLE_TOKEN).toMatchObject({ generator: 'secret' });
    expect(app.env.CONSOLE_TOKEN?.value).toBeUndefined();
  });

  it('names only settings of the convict schema, each with a description', () => {
    const known = schemaEnvNames();
    for (const [name, spec] of Object.entries(app.env)) {
      expect(known, name).toContain(name);
      expect(spec.description?.length, name).toBeGreaterThan(10);
    }
  });

  it('requires what the worker cannot start without, and only that', () => {
    // Heroku treats an entry without "required" as required; a generated one is filled in.
    const required = Object.entries(app.env)
      .filter(([, spec]) => spec.required !== false && spec.generator === undefined)
      .map(([name]) => name);
    expect(required.sort()).toEqual([...REQUIRED].sort());
  });

  it('gives defaults the configuration accepts', () => {
    const env: Record<string, string> = {};
    for (const [name, spec] of Object.entries(app.env)) {
      env[name] = spec.value ?? TYPED[name] ?? (spec.generator ? 'a'.repeat(64) : '');
    }
    const config = loadConfig({ env, configDir: 'config' });
    expect(config.env).toBe('production');
    expect(config.log.format).toBe('json');
    expect(config.console).toEqual({ token: 'a'.repeat(64), readOnly: false });
  });
});

describe('render.yaml (Render Blueprint)', () => {
  const blueprint = parseYaml(read('render.yaml')) as {
    services: Array<{
      type: string;
      runtime: string;
      buildCommand: string;
      startCommand: string;
      envVars: Array<{ key: string; value?: string; sync?: boolean; generateValue?: boolean }>;
      healthCheckPath?: string;
    }>;
  };
  const [service, web, ...others] = blueprint.services;
  const procfile = Object.fromEntries(
    read('Procfile')
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
  );

  it('declares one background worker that builds and starts like the Procfile', () => {
    expect(service).toMatchObject({ type: 'worker', runtime: 'node' });
    expect(service?.buildCommand).toMatch(/npm ci --include=dev && npm run build/);
    expect(service?.startCommand).toBe(`${GLIBC_MALLOC} node ${NODE_FLAGS} dist/main.js`);
    expect(procfile.worker).toBe(service?.startCommand);
  });

  it("declares the console as a web service, started like the Procfile's web line", () => {
    expect(others).toEqual([]);
    expect(web).toMatchObject({ type: 'web', runtime: 'node', healthCheckPath: '/healthz' });
    expect(web?.buildCommand).toBe(service?.buildCommand);
    expect(web?.startCommand).toBe('node dist/cli.js console');
    expect(procfile.web).toBe(web?.startCommand);
    expect(Object.keys(procfile).sort()).toEqual(['web', 'worker']);
    const vars = web?.envVars ?? [];
    expect(vars.find((v) => v.key === 'CONSOLE_TOKEN')).toEqual({
      key: 'CONSOLE_TOKEN',
      generateValue: true,
    });
    // It makes no ClipDrop call: the key stays with the worker.
    expect(vars.map((v) => v.key)).not.toContain('CLIPDROP_API_KEY');
    const known = schemaEnvNames();
    for (const v of vars) expect(known, v.key).toContain(v.key);
    const env: Record<string, string> = {};
    for (const v of vars)
      env[v.key] = v.value ?? TYPED[v.key] ?? (v.generateValue ? 'g'.repeat(32) : '');
    const config = loadConfig({ env, configDir: 'config', role: 'console' });
    expect(config.console.token).toBe('g'.repeat(32));
    expect(() => loadConfig({ env, configDir: 'config' })).toThrow(/CLIPDROP_API_KEY/);
  });

  it('names only settings of the convict schema, secrets asked for and never stored', () => {
    const known = schemaEnvNames();
    const vars = service?.envVars ?? [];
    for (const v of vars) expect(known, v.key).toContain(v.key);
    expect(new Set(vars.map((v) => v.key)).size).toBe(vars.length);
    for (const secret of ['FIREBASE_SERVICE_ACCOUNT_KEY', 'CLIPDROP_API_KEY', 'STORAGE_BUCKET']) {
      expect(vars.find((v) => v.key === secret)).toEqual({ key: secret, sync: false });
    }
  });

  it('gives values the configuration accepts', () => {
    const env: Record<string, string> = {};
    for (const v of service?.envVars ?? []) env[v.key] = v.value ?? TYPED[v.key] ?? '';
    const config = loadConfig({ env, configDir: 'config' });
    expect(config.env).toBe('production');
  });

  it('declares the same settings as app.json', () => {
    const app = JSON.parse(read('app.json')) as { env: Record<string, unknown> };
    const fromRender = (service?.envVars ?? []).map((v) => v.key);
    for (const key of fromRender) expect(Object.keys(app.env), key).toContain(key);
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const stages = text.split(/^FROM /m).slice(1);
  const final = stages.at(-1) ?? '';

  it('builds in one stage and runs from a slim, production-only one as a non-root user', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]).toMatch(/RUN npm run build/);
    expect(final).toMatch(/RUN npm ci --omit=dev/);
    expect(final).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(final).toMatch(/COPY config \.\/config/);
    expect(final).toMatch(/^USER (?!root\b|0\b)\w+/m);
    expect(final).toMatch(/^CMD \["node", "--max-semi-space-size=4", "dist\/main\.js"\]$/m);
  });

  it("npm start runs the Procfile's worker command: one way to start", () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(read('Procfile').split('\n')).toContain(`worker: ${pkg.scripts.start}`);
  });

  it("ships the console's browser files in the runtime image", () => {
    expect(final).toMatch(/^COPY console-ui \.\/console-ui$/m);
  });

  it('sets the same glibc malloc variables as the Procfile', () => {
    for (const assignment of GLIBC_MALLOC.split(' ')) {
      expect(final).toMatch(new RegExp(`^ENV .*\\b${assignment}\\b`, 'm'));
    }
  });

  it('keeps secrets and local artefacts out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['.env', '.git', 'node_modules', 'dist']) expect(ignored).toContain(entry);
  });
});

describe('firestore.indexes.json and the CLI entry', () => {
  it("is a valid index file: the console's composite indexes only; none on the day documents' jobIds map", () => {
    // The worker's queries need only automatic single-field indexes; the console's ordered
    // lists need theirs (test/unit/console-queries.test.ts checks each is here). `jobIds` is
    // never queried, and indexing it would cap a user's day at 20,000 counted jobs.
    const file = JSON.parse(read('firestore.indexes.json')) as {
      indexes: Array<{ collectionGroup: string; queryScope: string }>;
      fieldOverrides: unknown;
    };
    for (const index of file.indexes) {
      expect(index.queryScope).toBe('COLLECTION');
      expect(['characters', 'showcaseUsage']).toContain(index.collectionGroup);
    }
    expect(file.fieldOverrides).toEqual([
      { collectionGroup: 'showcaseUsage', fieldPath: 'jobIds', indexes: [] },
    ]);
  });

  it('registers the operator CLI as the package bin, runnable by node directly', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(pkg.bin).toEqual({ 'showcase-worker': 'dist/cli.js' });
    expect(read('src/cli.ts').split('\n')[0]).toBe('#!/usr/bin/env node');
  });
});

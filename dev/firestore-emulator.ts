/**
 * Finds, starts and stops the real Google Cloud Firestore emulator for tests
 * and demos. No firebase-tools / gcloud CLI is needed at runtime: we spawn
 * `java` directly on the emulator jar, in its own process group, so that
 * stop() (or the parent exiting) reliably takes the JVM down with it.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, open, readdir, readFile, realpath, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { inflateRawSync } from 'node:zlib';

import { freePort } from './free-port.js';

export interface FirestoreEmulator {
  /** '127.0.0.1:PORT', the value for FIRESTORE_EMULATOR_HOST or `settings({ host, ssl: false })`. */
  host: string;
  /** Resolves once every process of the emulator's process group has exited. */
  stop(): Promise<void>;
}

export class EmulatorNotFoundError extends Error {
  override name = 'EmulatorNotFoundError';
}

export interface FindEmulatorOptions {
  /** Environment to read (PATH, HOME, FIRESTORE_EMULATOR_JAR, JAVA_HOME, ...). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Home directory for ~/google-cloud-sdk and ~/.cache/firebase. Default: os.homedir(). */
  homeDir?: string;
  /** Replaces the list of well-known Cloud SDK roots (Debian, Homebrew, Snap, ~/google-cloud-sdk, ...). */
  sdkRoots?: string[];
  /** Replaces the list of firebase-tools emulator cache folders. */
  firebaseCacheDirs?: string[];
  /** Run `gcloud info` when `gcloud` is on PATH but its SDK root can't be derived from the binary. Default: true. */
  runGcloudInfo?: boolean;
  /** Default: process.platform. */
  platform?: NodeJS.Platform;
}

/** Where the emulator was found; informational. */
export type EmulatorSource = 'FIRESTORE_EMULATOR_JAR' | 'gcloud-sdk' | 'firebase-tools-cache';

export interface FoundEmulator {
  command: string;
  args: string[];
  source: EmulatorSource;
  jar: string;
}

const GCLOUD_COMPONENT_DIR = join('platform', 'cloud-firestore-emulator');
const GCLOUD_JAR = 'cloud-firestore-emulator.jar';
const GCLOUD_LAUNCHER = 'cloud_firestore_emulator';
/** Main class used by gcloud's launcher script (its jar has no Main-Class in the manifest). */
const DEFAULT_MAIN_CLASS = 'com.google.cloud.datastore.emulator.firestore.CloudFirestore';
const JVM_FLAGS = ['-Duser.language=en'];

function installHelp(extra?: string): string {
  return [
    ...(extra ? [extra, ''] : []),
    'The Cloud Firestore emulator was not found. Install one of:',
    '  - Debian/Ubuntu (Google Cloud apt repo): sudo apt-get install google-cloud-cli-firestore-emulator default-jre-headless',
    '  - Cloud SDK (gcloud) installed otherwise (Homebrew, Snap, ~/google-cloud-sdk, Windows installer):',
    '        gcloud components install cloud-firestore-emulator',
    '  - firebase-tools:  npm i -g firebase-tools && firebase setup:emulators:firestore',
    '    (downloads ~/.cache/firebase/emulators/cloud-firestore-emulator-v*.jar)',
    'or point FIRESTORE_EMULATOR_JAR at an emulator jar,',
    'or start an emulator yourself and set FIRESTORE_EMULATOR_HOST=127.0.0.1:PORT.',
    'The emulator needs Java 11 or newer (`java` on PATH, or JAVA_HOME set).',
  ].join('\n');
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function isExecutable(p: string, platform: NodeJS.Platform): Promise<boolean> {
  if (!(await isFile(p))) return false;
  if (platform === 'win32') return true;
  try {
    await access(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: first executable named `name` on env.PATH. */
async function which(
  name: string,
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
): Promise<string | undefined> {
  const pathVar = env.PATH ?? env.Path ?? '';
  const exts =
    platform === 'win32'
      ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').map((e) => e.toLowerCase())]
      : [''];
  const sep = platform === 'win32' ? ';' : delimiter;
  for (const dir of pathVar.split(sep)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      if (await isExecutable(candidate, platform)) return candidate;
    }
  }
  return undefined;
}

async function findJava(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
): Promise<string | undefined> {
  const exe = platform === 'win32' ? 'java.exe' : 'java';
  // gcloud's launcher honours $JAVA; keep that convention.
  if (env.JAVA && (await isExecutable(env.JAVA, platform))) return env.JAVA;
  if (env.JAVA_HOME) {
    const p = join(env.JAVA_HOME, 'bin', exe);
    if (await isExecutable(p, platform)) return p;
  }
  return which('java', env, platform);
}

/**
 * Reads META-INF/MANIFEST.MF from a jar and returns its Main-Class
 * ('' if the manifest has none, undefined if the jar can't be read).
 * Minimal zip reader: only what's needed for a (non-zip64) jar manifest.
 */
export async function readJarMainClass(jarPath: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(jarPath, 'r');
    const { size } = await fh.stat();
    const tailLen = Math.min(size, 65_535 + 22);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) return undefined;
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    if (cdOffset === 0xffffffff || cdSize === 0xffffffff) return undefined; // zip64
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    for (let p = 0; p + 46 <= cd.length && cd.readUInt32LE(p) === 0x02014b50;) {
      const method = cd.readUInt16LE(p + 10);
      const compSize = cd.readUInt32LE(p + 20);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      p += 46 + nameLen + extraLen + commentLen;
      if (name.toUpperCase() !== 'META-INF/MANIFEST.MF') continue;
      const local = Buffer.alloc(30);
      await fh.read(local, 0, 30, localOffset);
      if (local.readUInt32LE(0) !== 0x04034b50) return undefined;
      const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const data = Buffer.alloc(compSize);
      await fh.read(data, 0, compSize, dataStart);
      const text =
        method === 0
          ? data.toString('utf8')
          : method === 8
            ? inflateRawSync(data).toString('utf8')
            : undefined;
      if (text === undefined) return undefined;
      // Manifest continuation lines start with a single space.
      const unfolded = text.replace(/\r?\n /g, '');
      const m = /^Main-Class:\s*(\S+)\s*$/im.exec(unfolded);
      return m?.[1] ?? '';
    }
    return '';
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

/** The main class gcloud's launcher script uses (falls back to the known one). */
async function gcloudMainClass(componentDir: string): Promise<string> {
  try {
    const script = await readFile(join(componentDir, GCLOUD_LAUNCHER), 'utf8');
    const m = /\s(com\.google\.[\w.$]+)\s/.exec(script);
    if (m?.[1]) return m[1];
  } catch {
    // no launcher: use the default
  }
  return DEFAULT_MAIN_CLASS;
}

function gcloudJarIn(sdkRoot: string): string {
  return join(sdkRoot, GCLOUD_COMPONENT_DIR, GCLOUD_JAR);
}

function gcloudInfoSdkRoot(gcloud: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      gcloud,
      ['info', '--format=value(installation.sdk_root)'],
      { env, timeout: 15_000, windowsHide: true, shell: gcloud.toLowerCase().endsWith('.cmd') },
      (err, stdout) => resolve(err ? undefined : stdout.trim() || undefined),
    );
  });
}

function defaultSdkRoots(home: string, env: NodeJS.ProcessEnv): string[] {
  const roots = [
    env.CLOUDSDK_ROOT_DIR,
    // Debian/Ubuntu packages (google-cloud-cli / google-cloud-sdk)
    '/usr/lib/google-cloud-sdk',
    '/usr/share/google-cloud-sdk',
    // RPM / manual installs
    '/opt/google-cloud-sdk',
    '/opt/google-cloud-cli',
    '/usr/local/google-cloud-sdk',
    // interactive installer default
    join(home, 'google-cloud-sdk'),
    // Snap
    '/snap/google-cloud-cli/current',
    '/snap/google-cloud-sdk/current',
    // Homebrew (cask), Apple Silicon and Intel
    '/opt/homebrew/share/google-cloud-sdk',
    '/opt/homebrew/Caskroom/google-cloud-sdk/latest/google-cloud-sdk',
    '/usr/local/share/google-cloud-sdk',
    '/usr/local/Caskroom/google-cloud-sdk/latest/google-cloud-sdk',
    '/home/linuxbrew/.linuxbrew/share/google-cloud-sdk',
    // Windows installer
    env.LOCALAPPDATA && join(env.LOCALAPPDATA, 'Google', 'Cloud SDK', 'google-cloud-sdk'),
    env['ProgramFiles(x86)'] &&
      join(env['ProgramFiles(x86)'], 'Google', 'Cloud SDK', 'google-cloud-sdk'),
    env.ProgramFiles && join(env.ProgramFiles, 'Google', 'Cloud SDK', 'google-cloud-sdk'),
  ];
  return roots.filter((r): r is string => typeof r === 'string' && r.length > 0);
}

function defaultFirebaseCacheDirs(home: string, env: NodeJS.ProcessEnv): string[] {
  // firebase-tools honours FIREBASE_EMULATORS_PATH, else ~/.cache/firebase/emulators.
  return [env.FIREBASE_EMULATORS_PATH, join(home, '.cache', 'firebase', 'emulators')].filter(
    (d): d is string => typeof d === 'string' && d.length > 0,
  );
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Newest cloud-firestore-emulator-v*.jar in a firebase-tools cache dir. */
async function newestFirebaseJar(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const jars = names
    .map((n) => ({ n, m: /^cloud-firestore-emulator-v(\d+(?:\.\d+)*)\.jar$/.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .sort((x, y) => compareVersions(y.m[1] ?? '', x.m[1] ?? ''));
  for (const { n } of jars) {
    const p = join(dir, n);
    if (await isFile(p)) return p;
  }
  return undefined;
}

/**
 * Finds the emulator. Order: env FIRESTORE_EMULATOR_JAR; Cloud SDK roots
 * (CLOUDSDK_ROOT_DIR, the SDK of the `gcloud` on PATH, well-known install
 * folders); the firebase-tools cache. Returns the java command line (without
 * --host/--port). Throws EmulatorNotFoundError with install instructions.
 */
export async function findFirestoreEmulator(
  opts: FindEmulatorOptions = {},
): Promise<FoundEmulator> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const home = opts.homeDir ?? homedir();

  const withJava = async (
    jar: string,
    source: EmulatorSource,
    jvmArgs: (jar: string) => Promise<string[]>,
  ): Promise<FoundEmulator> => {
    const java = await findJava(env, platform);
    if (!java) {
      throw new EmulatorNotFoundError(
        `Found the Firestore emulator (${jar}) but no Java runtime: install Java 11 or newer ` +
          '(e.g. `sudo apt-get install default-jre-headless`, `brew install openjdk`) ' +
          'and put `java` on PATH or set JAVA_HOME.',
      );
    }
    return { command: java, args: [...JVM_FLAGS, ...(await jvmArgs(jar))], source, jar };
  };

  // 1. Explicit jar.
  const explicit = env.FIRESTORE_EMULATOR_JAR;
  if (explicit) {
    if (!(await isFile(explicit))) {
      throw new EmulatorNotFoundError(
        installHelp(`FIRESTORE_EMULATOR_JAR is set to ${explicit}, but that file does not exist.`),
      );
    }
    return withJava(explicit, 'FIRESTORE_EMULATOR_JAR', async (jar) => {
      const mainClass = await readJarMainClass(jar);
      // gcloud's jar has no Main-Class: run it like gcloud's launcher does.
      return mainClass === '' ? ['-cp', jar, DEFAULT_MAIN_CLASS] : ['-jar', jar];
    });
  }

  // 2. Cloud SDK roots, most specific first.
  const sdkRoots: string[] = [];
  const gcloud = await which('gcloud', env, platform);
  let gcloudRootFromBinary: string | undefined;
  if (gcloud) {
    try {
      // <root>/bin/gcloud, often via a symlink such as /usr/bin/gcloud.
      gcloudRootFromBinary = dirname(dirname(await realpath(gcloud)));
      sdkRoots.push(gcloudRootFromBinary);
    } catch {
      // dangling symlink
    }
  }
  sdkRoots.push(...(opts.sdkRoots ?? defaultSdkRoots(home, env)));
  const gcloudSdk = async (roots: string[]): Promise<FoundEmulator | undefined> => {
    for (const root of new Set(roots)) {
      const jar = gcloudJarIn(root);
      if (await isFile(jar)) {
        return withJava(jar, 'gcloud-sdk', async (j) => [
          '-cp',
          j,
          await gcloudMainClass(dirname(j)),
        ]);
      }
    }
    return undefined;
  };
  const fromSdk = await gcloudSdk(sdkRoots);
  if (fromSdk) return fromSdk;
  if (gcloud && opts.runGcloudInfo !== false) {
    // Slow path (~1 s, runs Python): ask gcloud itself.
    const root = await gcloudInfoSdkRoot(gcloud, env);
    const fromInfo = root && root !== gcloudRootFromBinary ? await gcloudSdk([root]) : undefined;
    if (fromInfo) return fromInfo;
  }

  // 3. firebase-tools cache.
  for (const dir of opts.firebaseCacheDirs ?? defaultFirebaseCacheDirs(home, env)) {
    const jar = await newestFirebaseJar(dir);
    if (jar) return withJava(jar, 'firebase-tools-cache', (j) => Promise.resolve(['-jar', j]));
  }

  throw new EmulatorNotFoundError(
    installHelp(
      gcloud
        ? `gcloud is installed (${gcloud}) but its cloud-firestore-emulator component is missing: ` +
            'run `gcloud components install cloud-firestore-emulator` ' +
            '(or, for an apt-installed gcloud, `sudo apt-get install google-cloud-cli-firestore-emulator`).'
        : undefined,
    ),
  );
}

// ---------------------------------------------------------------------------
// start / stop

export interface StartEmulatorOptions {
  /** Port to bind on 127.0.0.1. Default: a free one. */
  port?: number;
  /** How long to wait for the emulator to answer HTTP. Default: 60 s. */
  timeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL in stop(). Default: 5 s. */
  stopGraceMs?: number;
  /** Where to look for it. Default: findFirestoreEmulator(). */
  find?: FindEmulatorOptions;
}

const TAIL_BYTES = 8 * 1024;

class Tail {
  private buf = '';
  push(chunk: Buffer | string): void {
    this.buf += chunk.toString();
    if (this.buf.length > TAIL_BYTES * 2) this.buf = this.buf.slice(-TAIL_BYTES);
  }
  text(): string {
    return this.buf.slice(-TAIL_BYTES).trim();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** true if some process of group `pgid` still exists. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (process.platform === 'win32') {
    // No process groups: kill the tree.
    // Synchronous, so it also works from a process 'exit' handler.
    const r = spawnSync('taskkill', ['/pid', String(pid), '/T', '/F'], {
      stdio: 'ignore',
      windowsHide: true,
    });
    if (r.error) child.kill(signal);
    return;
  }
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

/** Kill emulators still running when the parent goes away. */
const liveChildren = new Set<ChildProcess>();
let exitHooksInstalled = false;
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: no grace, SIGKILL the groups.
  process.on('exit', () => {
    for (const child of liveChildren) killGroup(child, 'SIGKILL');
  });
  // The emulator is in its own process group, so a Ctrl-C in the terminal
  // doesn't reach it, and a signal-terminated Node doesn't run 'exit'
  // handlers. Kill the groups on the usual signals; if nobody else handles
  // the signal, re-raise it so the default behaviour (terminate) still applies.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const child of liveChildren) killGroup(child, 'SIGKILL');
      if (process.listenerCount(sig) === 1) {
        process.off(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

async function waitUntilReady(
  url: string,
  child: ChildProcess,
  deadline: number,
): Promise<'ready' | 'exited' | 'timeout'> {
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.ok && body.trim() === 'Ok') return 'ready';
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return 'timeout';
}

async function startOnce(
  found: FoundEmulator,
  port: number,
  timeoutMs: number,
  stopGraceMs: number,
): Promise<FirestoreEmulator> {
  const host = `127.0.0.1:${port}`;
  const child = spawn(
    found.command,
    [...found.args, '--host', '127.0.0.1', '--port', String(port)],
    {
      detached: true, // own process group: stop() kills the JVM and anything it spawned
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    },
  );
  const stdout = new Tail();
  const stderr = new Tail();
  // Keep draining the pipes for the emulator's whole life, or it could block.
  child.stdout?.on('data', (c: Buffer) => stdout.push(c));
  child.stderr?.on('data', (c: Buffer) => stderr.push(c));
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
    child.once('exit', () => {
      // Crashed on its own: forget it, so the exit hooks never signal a reused pgid.
      if (process.platform === 'win32' || child.pid === undefined || !groupAlive(child.pid)) {
        liveChildren.delete(child);
      }
      resolve();
    });
  });
  liveChildren.add(child);
  installExitHooks();
  // Don't keep the parent's event loop alive just for the emulator.
  child.unref();
  (child.stdout as Socket | null)?.unref();
  (child.stderr as Socket | null)?.unref();

  const childRunning = (): boolean =>
    !spawnError && child.exitCode === null && child.signalCode === null;
  // Anything of the emulator still alive? (On Windows: just the child itself.)
  const alive = (): boolean =>
    child.pid !== undefined &&
    (childRunning() || (process.platform !== 'win32' && groupAlive(child.pid)));
  const waitGone = async (ms: number): Promise<void> => {
    const end = Date.now() + ms;
    await Promise.race([exited, sleep(ms)]);
    while (alive() && Date.now() < end) await sleep(50);
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (alive()) {
        killGroup(child, 'SIGTERM');
        await waitGone(stopGraceMs);
        if (alive()) {
          killGroup(child, 'SIGKILL');
          await waitGone(5_000);
        }
      }
      liveChildren.delete(child);
      child.stdout?.destroy();
      child.stderr?.destroy();
    })());

  const outcome = await waitUntilReady(`http://${host}/`, child, Date.now() + timeoutMs);
  if (outcome === 'ready') return { host, stop };

  if (outcome === 'exited') await exited;
  await stop();
  const cmd = [found.command, ...found.args, '--host', '127.0.0.1', '--port', String(port)].join(
    ' ',
  );
  const errText = stderr.text() || stdout.text() || '(no output)';
  const why = spawnError
    ? `could not be spawned (${spawnError.message})`
    : outcome === 'exited'
      ? `exited early (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`
      : `did not answer on http://${host}/ within ${timeoutMs} ms`;
  const javaHint = /UnsupportedClassVersionError|class file version/.test(errText)
    ? '\nYour Java is too old: the Firestore emulator needs Java 11 or newer.'
    : '';
  const err = new Error(
    `Firestore emulator ${why}.\nCommand: ${cmd}\n--- emulator output (tail) ---\n${errText}${javaHint}`,
  );
  (err as Error & { bindFailure?: boolean }).bindFailure =
    outcome === 'exited' && /BindException|Address already in use/i.test(errText);
  throw err;
}

/**
 * Starts the emulator on 127.0.0.1 (a free port unless opts.port), in its own
 * process group, and resolves once GET http://host/ answers "Ok".
 */
export async function startFirestoreEmulator(
  opts: StartEmulatorOptions = {},
): Promise<FirestoreEmulator> {
  const found = await findFirestoreEmulator(opts.find);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const stopGraceMs = opts.stopGraceMs ?? 5_000;
  // A free port may be taken between freePort() and the JVM binding it: retry then.
  const attempts = opts.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOnce(found, port, timeoutMs, stopGraceMs);
    } catch (err) {
      const bindFailure = (err as { bindFailure?: boolean }).bindFailure === true;
      if (!bindFailure || attempt >= attempts) throw err;
    }
  }
}

/**
 * Deletes all documents of `projectId` (default database) in the emulator at
 * `host` ('127.0.0.1:PORT').
 */
export async function clearFirestore(host: string, projectId: string): Promise<void> {
  const url = `http://${host}/emulator/v1/projects/${encodeURIComponent(projectId)}/databases/(default)/documents`;
  const res = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(30_000) });
  if (!res.ok) {
    const body = await res.text().catch(() => '');
    throw new Error(`clearFirestore(${host}, ${projectId}): HTTP ${res.status} ${body}`.trim());
  }
  await res.arrayBuffer().catch(() => undefined);
}

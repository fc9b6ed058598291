/** What every scenario gets from the runner, and what it gives back. */
import { randomUUID } from 'node:crypto';
import type { LocalStack } from '../../dev/local-stack.js';

export interface BenchContext {
  stack: LocalStack;
  /** Source pictures; each job uploads its own variant (see images.ts). */
  sources: Record<'small' | 'large', { data: Buffer; contentType: 'image/png' | 'image/jpeg' }>;
  /**
   * Uploads a variant of a source to the Storage stand-in, where the app would put it (the
   * owner's `raw-uploads/{userId}/`, the worker's default SOURCE_GS_PATHS), and returns its
   * gs:// URL.
   */
  upload(kind: 'small' | 'large', owner: string, name: string): string;
  smoke: boolean;
  /** The Firestore emulator's pid when it can be seen, for its CPU time. */
  emulatorPid: number | undefined;
  say(line: string): void;
}

/** A project id nobody else uses: each run sees only its own documents. */
export const freshProject = (label: string): string =>
  `demo-bench-${label}-${randomUUID().slice(0, 8)}`.toLowerCase();

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Runs a scenario's parts one after another; a part that throws is reported, not fatal. */
export interface PartError {
  part: string;
  error: string;
}

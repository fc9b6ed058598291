import { setTimeout as delay } from 'node:timers/promises';
import type { Firestore } from 'firebase-admin/firestore';

/**
 * A Firestore client whose writes land but whose answers can be lost: gRPC UNKNOWN after the
 * write is applied. The emulator does exactly this to a commit in a project whose listen
 * stream was just closed, and "2 UNKNOWN: Stream removed" does it in production.
 *
 * - `updates`: the next N `DocumentReference.update` calls are applied, then throw `code`
 *   (UNKNOWN by default; the emulator also answers CANCELLED, "call already cancelled").
 * - `transactions`: the next N `runTransaction` calls commit once, and then run the body
 *   again, as the SDK does after a commit that answered UNKNOWN (it retries UNKNOWN).
 * - `sets`: the same for the next N `DocumentReference.set` calls.
 * - `commits`: the same for the next N `WriteBatch.commit` calls.
 * - `lateCommits`: the next N `WriteBatch.commit` calls never answer, and reach Firestore only
 *   `lateMs` later (held up on the way), after the writer gave up on them; `late` says how
 *   each fared there: `landed` or `refused`.
 * - `reads`: the next N `DocumentReference.get` calls fail with `readCode` (UNAVAILABLE by
 *   default): the read that would tell whether a write whose answer was lost landed.
 * - `silent`: the next N `update` calls never answer, applied or not (`silentApplies`): a
 *   commit hung on its way, which the SDK would wait for up to its 60 s deadline.
 * - `masked`: the next N `update` or `WriteBatch.commit` calls reach Firestore, and whatever
 *   it answered (applied, or refused: a precondition failed) the caller gets `code`.
 */
export interface LostAnswers {
  db: Firestore;
  plan: {
    updates: number;
    sets: number;
    commits: number;
    lateCommits: number;
    lateMs: number;
    transactions: number;
    code: number;
    silent: number;
    silentApplies: boolean;
    masked: number;
    reads: number;
    readCode: number;
  };
  /** How many answers were lost so far. */
  lost: number;
  late: Promise<'landed' | 'refused'>[];
}

export function losingAnswers(real: Firestore): LostAnswers {
  const faults: LostAnswers = {
    db: real,
    plan: {
      updates: 0,
      sets: 0,
      commits: 0,
      lateCommits: 0,
      lateMs: 1_000,
      transactions: 0,
      code: 2,
      silent: 0,
      silentApplies: true,
      masked: 0,
      reads: 0,
      readCode: 14,
    },
    lost: 0,
    late: [],
  };
  const unknown = () =>
    Object.assign(new Error(`${faults.plan.code} answer lost`), { code: faults.plan.code });

  const wrapRef = <T extends object>(ref: T): T =>
    new Proxy(ref, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop === 'get' && typeof value === 'function') {
          return (...args: unknown[]) => {
            if (faults.plan.reads === 0)
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            faults.plan.reads -= 1;
            const code = faults.plan.readCode;
            return Promise.reject(Object.assign(new Error(`${code} read failed`), { code }));
          };
        }
        if ((prop !== 'update' && prop !== 'set') || typeof value !== 'function') return value;
        const counter = prop === 'update' ? 'updates' : 'sets';
        return async (...args: unknown[]) => {
          const apply = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (counter === 'updates' && faults.plan.masked > 0) {
            faults.plan.masked -= 1;
            faults.lost += 1;
            await apply().catch(() => undefined);
            throw unknown();
          }
          if (counter === 'updates' && faults.plan.silent > 0) {
            faults.plan.silent -= 1;
            faults.lost += 1;
            if (faults.plan.silentApplies) await apply();
            return new Promise(() => undefined);
          }
          const result: unknown = await apply();
          if (faults.plan[counter] > 0) {
            faults.plan[counter] -= 1;
            faults.lost += 1;
            throw unknown();
          }
          return result;
        };
      },
    });

  const wrapCollection = <T extends object>(col: T): T =>
    new Proxy(col, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'doc' || typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          wrapRef((value as (...a: unknown[]) => object).apply(target, args));
      },
    });

  faults.db = new Proxy(real, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (prop === 'collection') {
        return (...args: unknown[]) => wrapCollection(fn.apply(target, args) as object);
      }
      if (prop === 'batch') {
        return (...args: unknown[]) => {
          const batch = fn.apply(target, args) as { commit: () => Promise<unknown> };
          const commit = batch.commit.bind(batch);
          batch.commit = async () => {
            if (faults.plan.lateCommits > 0) {
              faults.plan.lateCommits -= 1;
              faults.lost += 1;
              faults.late.push(
                delay(faults.plan.lateMs)
                  .then(commit)
                  .then(
                    () => 'landed' as const,
                    () => 'refused' as const,
                  ),
              );
              return new Promise(() => undefined);
            }
            if (faults.plan.masked > 0) {
              faults.plan.masked -= 1;
              faults.lost += 1;
              await commit().catch(() => undefined);
              throw unknown();
            }
            const result = await commit();
            if (faults.plan.commits > 0) {
              faults.plan.commits -= 1;
              faults.lost += 1;
              throw unknown();
            }
            return result;
          };
          return batch;
        };
      }
      if (prop === 'runTransaction') {
        return async (...args: unknown[]) => {
          if (faults.plan.transactions > 0) {
            faults.plan.transactions -= 1;
            faults.lost += 1;
            await fn.apply(target, args);
          }
          return fn.apply(target, args);
        };
      }
      return fn.bind(target);
    },
  });
  return faults;
}

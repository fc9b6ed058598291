/**
 * A large intermediate lent to a known number of uses, then dropped: the job holds no
 * reference to it once the work that needs it has started, whatever the stage still waits for.
 */
export class Lent {
  constructor(
    private data: Buffer | undefined,
    private uses: number,
  ) {}

  use<T>(fn: (data: Buffer) => Promise<T>): Promise<T> {
    const data = this.data;
    if (!data) return Promise.reject(new Error('a lent buffer was used more often than lent'));
    if (--this.uses === 0) this.data = undefined;
    return fn(data);
  }
}

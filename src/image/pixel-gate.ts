/**
 * A budget of pixels being decoded at once, across every job of the process. A full decode
 * holds the whole frame in memory (libvips' WebP loader holds it twice: ~134 MB for the
 * 4096x4096 RGBA answers of ClipDrop's upscaler), so the jobs a worker holds finishing
 * together could add those up past a 512 MB dyno. Work over the budget waits its turn, in
 * order; one piece of work is always admitted, however large (the pixel limit bounds it).
 */
export class PixelGate {
  private inUse = 0;
  private running = 0;
  private readonly queue: Array<{ pixels: number; start: () => void }> = [];

  constructor(readonly budget: number) {}

  /** Runs `work` once `pixels` fit in the budget (or nothing else runs). */
  async run<T>(pixels: number, work: () => Promise<T>): Promise<T> {
    await this.acquire(pixels);
    try {
      return await work();
    } finally {
      this.release(pixels);
    }
  }

  /** Pixels admitted now; for tests and metrics. */
  get pixelsInUse(): number {
    return this.inUse;
  }

  private acquire(pixels: number): Promise<void> {
    if (this.queue.length === 0 && this.fits(pixels)) {
      this.admit(pixels);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ pixels, start: resolve }));
  }

  private release(pixels: number): void {
    this.inUse -= pixels;
    this.running -= 1;
    // First come, first served: a large decode is not starved by a stream of small ones.
    while (this.queue.length > 0 && this.fits(this.queue[0]!.pixels)) {
      const next = this.queue.shift()!;
      this.admit(next.pixels);
      next.start();
    }
  }

  private fits(pixels: number): boolean {
    return this.running === 0 || this.inUse + pixels <= this.budget;
  }

  private admit(pixels: number): void {
    this.inUse += pixels;
    this.running += 1;
  }
}

// The job pool: a bounded number of slots, handed out by priority (highest first, then first
// come). The realizer asks with each node's critical-path length, so the longest chain starts
// first and the short, independent work fills the other slots (HLFET list scheduling, as Bazel
// and BuildXL order their ready queues).

interface Waiter {
  prio: number;
  seq: number;
  wake: () => void;
}

export class JobPool {
  private free: number;
  private seq = 0;
  /** binary max-heap on (priority, -seq) */
  private readonly heap: Waiter[] = [];
  private draining = false;

  constructor(slots: number) {
    this.free = Math.max(1, slots);
  }

  async acquire(prio = 0): Promise<void> {
    await new Promise<void>((wake) => {
      this.push({ prio, seq: this.seq++, wake });
      if (this.free > 0) this.drainSoon();
    });
  }

  /**
   * A slot given back goes out as a free one does: once the requests of this turn are in. The
   * job that ends is what makes its dependents ready, and they ask for a slot right after (the
   * next link of a chain): handed at once to the best waiter then, the slot went to independent
   * work, and the chain waited a whole job for the next one.
   */
  release(): void {
    this.free++;
    if (this.heap.length > 0) this.drainSoon();
  }

  /**
   * Free slots are handed out once the current burst of requests is in (after the pending
   * microtasks and I/O callbacks of this turn), so they go to the longest chains, not to whoever
   * asked first.
   */
  private drainSoon(): void {
    if (this.draining) return;
    this.draining = true;
    setImmediate(() => {
      this.draining = false;
      for (; this.free > 0 && this.heap.length > 0; this.free--) this.pop()!.wake();
    });
  }

  /** Run `fn` holding a slot. */
  async run<T>(prio: number | undefined, fn: () => Promise<T>): Promise<T> {
    await this.acquire(prio);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private before(a: Waiter, b: Waiter): boolean {
    return a.prio > b.prio || (a.prio === b.prio && a.seq < b.seq);
  }

  private push(w: Waiter): void {
    const h = this.heap;
    h.push(w);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Waiter | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

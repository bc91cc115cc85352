// Repeated measurement. Commands compared with each other are run round-robin (kiln, anchor,
// anchor, kiln, ...) rather than one series after another, so a change in the machine's load
// during the run (this machine is shared) hits Kiln and its anchors alike.
import { run, type Cmd, type RunResult } from "./proc.js";

export interface Series {
  /** wall times in ms, in run order */
  ms: number[];
  /** peak RSS per run in KiB */
  rssKb: number[];
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(xs: number[]): Summary {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

export interface Contender {
  key: string;
  cmd: Cmd;
  /** run before every timed run, untimed (e.g. copy a template store into place) */
  before?: () => void;
  /** run after every timed run, untimed (e.g. remove that copy); gets the result */
  after?: (r: RunResult) => void;
}

export interface MeasureOptions {
  runs: number;
  /** untimed runs of each contender first (page cache, bundle cache, lazily built caches) */
  warmup: number;
  /** called after each timed run, for progress output */
  onRun?: (key: string, i: number, r: RunResult) => void;
}

/** Measure several commands round-robin; returns one series per contender key. */
export function measureRoundRobin(contenders: Contender[], o: MeasureOptions): Map<string, Series> {
  const out = new Map<string, Series>(contenders.map((c) => [c.key, { ms: [], rssKb: [] }]));
  const once = (c: Contender): RunResult => {
    c.before?.();
    const r = run(c.cmd);
    c.after?.(r);
    return r;
  };
  for (let i = 0; i < o.warmup; i++) for (const c of contenders) once(c);
  for (let i = 0; i < o.runs; i++) {
    // rotate the starting contender so no one is always first after the previous one's run
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(i + k) % contenders.length]!;
      const r = once(c);
      const s = out.get(c.key)!;
      s.ms.push(r.ms);
      if (r.maxRssKb !== undefined) s.rssKb.push(r.maxRssKb);
      o.onRun?.(c.key, i, r);
    }
  }
  return out;
}

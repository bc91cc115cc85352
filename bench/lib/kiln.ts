// Reading Kiln's JSON-lines events (--reporter json) for phase breakdowns.

export interface KilnEvent {
  type: string;
  time: number;
  ms?: number;
  derivations?: number;
  built?: number;
  cached?: number;
  node?: { name: string };
}

export function parseEvents(stderr: string): KilnEvent[] {
  const out: KilnEvent[] = [];
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as KilnEvent);
    } catch {
      /* not an event line */
    }
  }
  return out;
}

export interface Phases {
  /** process spawn to the "evaluated" event, minus evaluation itself: start-up (node, bundle load, CLI, store open) */
  startupMs: number;
  /** evaluation as Kiln reports it: bundle check + import + walk + hashing */
  evalMs: number;
  /** plan + realize as Kiln reports it ("finished" event) */
  realizeMs: number;
  /** after "finished" until the process is gone: result links, store close, exit */
  exitMs: number;
}

/** Split one run's wall time into phases; `spawnedAt` and `endedAt` are Date.now() around the child. */
export function phases(events: KilnEvent[], spawnedAt: number, endedAt: number): Phases | undefined {
  const ev = events.find((e) => e.type === "evaluated");
  const fin = events.find((e) => e.type === "finished");
  if (!ev || !fin || ev.ms === undefined || fin.ms === undefined) return undefined;
  return {
    startupMs: ev.time - ev.ms - spawnedAt,
    evalMs: ev.ms,
    realizeMs: fin.ms,
    exitMs: endedAt - fin.time,
  };
}

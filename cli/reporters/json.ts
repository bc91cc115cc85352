// JSON lines reporter: every engine event, one JSON object per line, for other tools.
import type { KilnEvent } from "../../engine/events.js";

export function jsonReporter(write: (s: string) => void, now: () => number): (e: KilnEvent) => void {
  return (e) => write(JSON.stringify({ time: now(), ...e }) + "\n");
}

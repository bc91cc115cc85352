// The launcher's reading of a plain `kiln gc` command line (cli/plain-args.ts), so that gc runs
// from its own small bundle (dist/kiln-gc.cjs, cli/gc-main.ts) without loading the whole CLI and
// its argument parser: ~25 ms of the ~35 that a gc's mark of a thousand paths spends above
// starting Node. Anything it does not read goes to the full CLI. Loaded by the launcher at every
// start: no imports but the options' tables.
import { GC_OPTIONS, type GcArgs } from "./gc-options.js";
import { parsePlain, type PlainSpec } from "./plain-args.js";

export interface LightGcArgs extends GcArgs {
  store?: string;
}

/** gc's options by every spelling, from their one declaration; the globals gc ignores. */
const SPEC: PlainSpec = (() => {
  const values: Record<string, string> = {};
  const flags: Record<string, readonly [string, boolean]> = {};
  const numbers = new Set<string>();
  for (const [name, o] of Object.entries(GC_OPTIONS)) {
    const spellings = [`--${name}`, ...("alias" in o ? [`-${o.alias}`] : [])];
    for (const s of spellings) {
      if (o.type === "boolean") flags[s] = [name, true];
      else values[s] = name;
    }
    if (o.type === "number") numbers.add(name);
  }
  // gc builds, fetches and evaluates nothing, and reads no builder or cache settings (in the full
  // CLI either: its `settings: false`)
  const ignoredFlags = new Set(["--keep-going", "-k", "--print-build-logs", "-L", "--eval-cache", "--no-eval-cache"]);
  return { command: "gc", values, numbers, flags, ignoredFlags, positionals: false };
})();

/** `kiln [globals] gc [options]` as gc's bundle runs it; undefined for anything else. */
export function parseGcArgs(argv: readonly string[]): LightGcArgs | undefined {
  const p = parsePlain(argv, SPEC);
  return p && { ...(p.store !== undefined ? { store: p.store } : {}), ...p.options };
}

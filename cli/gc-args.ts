// The launcher's reading of a plain `kiln gc` command line, so that gc runs from its own small
// bundle (dist/kiln-gc.cjs, cli/gc-main.ts) without loading the whole CLI and its argument parser:
// ~25 ms of the ~35 that a gc's mark of a thousand paths spends above starting Node.
//
// It reads only the forms whose meaning is plain: `--opt VALUE`, `--opt=VALUE`, `--flag`, `-n`,
// the global options that do not change what gc does, each at most once, and the one word `gc`.
// Anything else (--help, `--flag=false`, `--no-flag`, grouped short flags, a repeated option, a
// value that starts with "-", another command, a typo) is left to the full CLI, which reads it as
// it always has and says what is wrong. Loaded by the launcher at every start: no imports but the
// options' table.
import { GC_OPTIONS, type GcArgs } from "./gc-options.js";

export interface LightGcArgs extends GcArgs {
  store?: string;
}

/**
 * Global options that take one value but do not change a gc (gc builds, fetches and evaluates
 * nothing, and reads no builder or cache settings, in the full CLI either: its `settings: false`).
 * Not the array options (--mirror, --substituters...): yargs gives them every word that follows,
 * `gc` included.
 */
const IGNORED_VALUE = new Set(["--recipes", "-f", "--jobs", "-j", "--cores", "--cache-timeout"]);
/** Global flags that do not change a gc. */
const IGNORED_FLAGS = new Set(["--keep-going", "-k", "--print-build-logs", "-L", "--eval-cache", "--no-eval-cache"]);
const REPORTERS = new Set(["tui", "plain", "json", "quiet"]);

const ALIASES: Record<string, string> = Object.fromEntries(
  Object.entries(GC_OPTIONS).flatMap(([name, spec]) => ("alias" in spec ? [[`-${spec.alias}`, name]] : [])),
);

/** `kiln [globals] gc [options]` as gc's bundle runs it; undefined for anything else. */
export function parseGcArgs(argv: readonly string[]): LightGcArgs | undefined {
  const out: Record<string, string | number | boolean> = {};
  const seen = new Set<string>();
  let command = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith("-")) {
      if (word !== "gc" || command) return undefined;
      command = true;
      continue;
    }
    const eq = word.startsWith("--") ? word.indexOf("=") : -1;
    const name = eq > 0 ? word.slice(0, eq) : word;
    let value = eq > 0 ? word.slice(eq + 1) : undefined;
    if (seen.has(name)) return undefined;
    seen.add(name);
    const takeValue = (): string | undefined => {
      value ??= argv[++i];
      return value === undefined || value === "" || value.startsWith("-") ? undefined : value;
    };
    if (IGNORED_FLAGS.has(name)) {
      if (value !== undefined) return undefined;
      continue;
    }
    if (IGNORED_VALUE.has(name)) {
      if (takeValue() === undefined) return undefined;
      continue;
    }
    if (name === "--reporter") {
      if (!REPORTERS.has(takeValue() ?? "")) return undefined;
      continue;
    }
    if (name === "--store") {
      const v = takeValue();
      if (v === undefined) return undefined;
      out.store = v;
      continue;
    }
    // gc's own options come after the command
    if (!command) return undefined;
    const option = ALIASES[name] ?? (name.startsWith("--") ? name.slice(2) : undefined);
    if (option === undefined || !Object.hasOwn(GC_OPTIONS, option) || seen.has(`--${option}`) && name !== `--${option}`) return undefined;
    seen.add(`--${option}`);
    const type = GC_OPTIONS[option as keyof typeof GC_OPTIONS].type;
    if (type === "boolean") {
      if (value !== undefined) return undefined;
      out[option] = true;
    } else {
      const v = takeValue();
      if (v === undefined) return undefined;
      if (type === "number") {
        if (!/^\d+$/.test(v)) return undefined;
        out[option] = Number(v);
      } else out[option] = v;
    }
  }
  return command ? (out as LightGcArgs) : undefined;
}

// kiln gc's options, declared once: to yargs by the command (cli/commands/gc.ts), and to the
// launcher's own reading of a plain `kiln gc` command line (cli/gc-args.ts). No imports: the
// launcher loads it at every start.

export const GC_OPTIONS = {
  "dry-run": { alias: "n", type: "boolean", describe: "delete nothing: print what would be deleted" },
  "print-dead": { type: "boolean", describe: "print only the paths that would be deleted, one per line (a dry run)" },
  "max-freed": { type: "string", describe: "stop after freeing SIZE (e.g. 2G), least recently used first" },
  "max-size": { type: "string", describe: "delete least recently used unreachable paths until the store is at most SIZE" },
  "older-than": { type: "string", describe: "only delete paths unused for at least DURATION (e.g. 30d, 12h)" },
  "keep-build-deps": { type: "boolean", describe: "also keep the build-time inputs of every live path (to rebuild it without fetching)" },
  "keep-generations": { type: "number", describe: "first delete all but the newest N generations of every profile (the current one is always kept)" },
  "delete-older-than": { type: "string", describe: "first delete the generations of every profile older than DURATION, as Nix does (the current one, and the newest older one, are kept)" },
  "history-older-than": { type: "string", describe: "also delete build history and logs older than DURATION; what `kiln why` compares for each target is kept" },
  json: { type: "boolean", describe: "print the result as JSON" },
  "batch-size": { type: "number", hidden: true, describe: "paths deleted per transaction (tests)" },
} as const;

type Typed<T> = T extends "boolean" ? boolean : T extends "number" ? number : string;

/** The options as a command reads them: each one given or not. */
export type GcArgs = { -readonly [K in keyof typeof GC_OPTIONS]?: Typed<(typeof GC_OPTIONS)[K]["type"]> };

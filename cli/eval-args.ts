// The launcher's reading of a plain `kiln plan` or `kiln eval` command line (cli/plain-args.ts),
// so that they run from a bundle of their own (dist/kiln-eval.cjs, cli/eval-main.ts) without the
// whole CLI and its argument parser: a plan after an edit spends most of its time above starting
// Node loading code, and the full CLI's is twice the size of what these two verbs run. Anything
// it does not read goes to the full CLI. Loaded by the launcher at every start: no imports but
// the plain reader.
import { parsePlain, type PlainSpec } from "./plain-args.js";

export type LightVerb = "plan" | "eval";

export interface LightEvalArgs {
  store?: string;
  recipes?: string;
  reporter?: string;
  targets: string[];
  json?: boolean;
  "eval-cache"?: boolean;
}

/**
 * Both verbs take targets and --json; --eval-cache and --no-eval-cache after the command word
 * (before it, the full CLI reads them). Keep-going and build logs change neither: nothing is built.
 */
const spec = (command: LightVerb): PlainSpec => ({
  command,
  values: {},
  flags: { "--json": ["json", true], "--eval-cache": ["eval-cache", true], "--no-eval-cache": ["eval-cache", false] },
  ignoredFlags: new Set(["--keep-going", "-k", "--print-build-logs", "-L"]),
  positionals: true,
});
const SPECS = { plan: spec("plan"), eval: spec("eval") };

/** `kiln [globals] plan|eval <targets..> [--json] [--no-eval-cache]` as the light bundle runs it; undefined for anything else. */
export function parseEvalArgs(argv: readonly string[]): { verb: LightVerb; args: LightEvalArgs } | undefined {
  const verb = argv.find((w) => !w.startsWith("-") && (w === "plan" || w === "eval"));
  if (verb === undefined) return undefined;
  const p = parsePlain(argv, SPECS[verb as LightVerb]);
  if (!p || p.positionals.length === 0) return undefined;
  return {
    verb: verb as LightVerb,
    args: {
      ...(p.store !== undefined ? { store: p.store } : {}),
      ...(p.recipes !== undefined ? { recipes: p.recipes } : {}),
      ...(p.reporter !== undefined ? { reporter: p.reporter } : {}),
      targets: p.positionals,
      ...(p.options as { json?: boolean; "eval-cache"?: boolean }),
    },
  };
}

// The one shape of a verb (cli/commands/*): its positionals and options, declared once to yargs,
// which infers the arguments' types from them, and its run. What every verb would otherwise repeat
// is here: the store context around the run (withContext: reporter, Ctrl-C, closing and backing up
// the store), the quiet reporter of a verb that builds nothing, and a failure's message and exit code.
import type { Argv, ArgumentsCamelCase } from "yargs";
import type { Context } from "../engine/context.js";
import type { OpenStoreOptions } from "../store/local-store.js";
import type { GlobalArgs } from "./context.js";
import { reportError, withContext } from "./run.js";

/** A verb, registered on the command line (cli/main.ts) or under a group verb. */
export type KilnCommand = (y: Argv<GlobalArgs>) => Argv<GlobalArgs>;

export type Ctx = Context & { root: string };

/** The arguments a verb's options declare, with the global ones. */
export type ArgsOf<F> = F extends (y: Argv<GlobalArgs>) => Argv<infer A> ? A : never;

interface Verb<A> {
  /** name and positionals, as yargs reads them: "log <target>" */
  command: string;
  /** its line in --help; false hides it */
  describe: string | false;
  /** its positionals and options */
  options: (y: Argv<GlobalArgs>) => Argv<A>;
}

/** A verb that works on the store: it runs inside withContext. */
export interface StoreVerb<A> extends Verb<A> {
  /** the default */
  store?: true;
  /** the reporter it shows progress with; by default none: a verb that builds nothing is quiet */
  reporter?: (argv: A) => string | undefined;
  /** how the store is opened (verify --repair: even a damaged one) */
  open?: (argv: A) => OpenStoreOptions;
  /** false: it builds and substitutes nothing, and reads no builder or cache settings (cli/context.ts) */
  settings?: false;
  /** the work; what it returns is the exit code (nothing: success) */
  run: (argv: A, ctx: Ctx) => Promise<number | void>;
}

/** A verb that opens no store itself (it only writes files, or opens the store in steps of its own). */
interface BareVerb<A> extends Verb<A> {
  store: false;
  /** the work; what it returns is the exit code (nothing: the exit code stays as it is) */
  run: (argv: A) => Promise<number | void>;
}

/** A verb that only groups subcommands: kiln pin add|list|rm. */
interface GroupVerb {
  command: string;
  describe: string;
  subcommands: KilnCommand[];
  /** what is said when no subcommand is given (default: yargs' own words) */
  missing?: string;
}

/** A store verb's spec as it is (its arguments' type inferred from its options), for defineCommand and runStoreVerb. */
export function storeVerb<A extends GlobalArgs>(spec: StoreVerb<A>): StoreVerb<A> {
  return spec;
}

export function defineCommand(spec: GroupVerb): KilnCommand;
export function defineCommand<A extends GlobalArgs>(spec: StoreVerb<A> | BareVerb<A>): KilnCommand;
export function defineCommand<A extends GlobalArgs>(spec: StoreVerb<A> | BareVerb<A> | GroupVerb): KilnCommand {
  if ("subcommands" in spec) {
    const builder = (y: Argv<GlobalArgs>) => spec.subcommands.reduce((acc, add) => add(acc), y).demandCommand(1, spec.missing);
    // a subcommand does the work
    return (y) => y.command({ command: spec.command, describe: spec.describe, builder, handler: () => {} });
  }
  const handler = async (parsed: ArgumentsCamelCase<A>): Promise<void> => {
    const argv = declared(parsed);
    if (spec.store !== false) return runStoreVerb(spec, argv);
    try {
      const code = await spec.run(argv);
      if (code !== undefined) process.exitCode = code;
    } catch (e) {
      process.exitCode = reportError(e);
    }
  };
  return (y) => y.command({ command: spec.command, describe: spec.describe, builder: spec.options, handler });
}

/**
 * A store verb's run inside its context, as the full CLI runs it once yargs has read the command
 * line, and as the launcher's light bundle for plain `plan` and `eval` lines does (cli/eval-main.ts).
 */
export function runStoreVerb<A extends GlobalArgs>(spec: StoreVerb<A>, argv: A): Promise<void> {
  return withContext({ ...argv, reporter: spec.reporter ? spec.reporter(argv) : "quiet" }, (ctx) => spec.run(argv, ctx), spec.open?.(argv), { settings: spec.settings !== false });
}

/**
 * The arguments as the options declared them. yargs adds `_`, `$0`, camelCase twins of dashed
 * names and an index signature that would let a misspelt option through as `unknown`; dropping
 * them is safe, but TypeScript cannot see that ArgumentsCamelCase<A> holds A for a generic A.
 */
function declared<A>(parsed: ArgumentsCamelCase<A>): A {
  return parsed as unknown as A;
}

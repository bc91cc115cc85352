// kiln: the command line. Composition root; one file per verb under commands/.
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { isTerminal } from "./output.js";
import { cacheCommand } from "./commands/cache.js";
import { checkCommand } from "./commands/check.js";
import { copyCommand } from "./commands/copy.js";
import { builderServeCommand } from "./commands/builder-serve.js";
import { duCommand } from "./commands/du.js";
import { evalCommand } from "./commands/eval.js";
import { graphCommand } from "./commands/graph.js";
import { gcCommand } from "./commands/gc.js";
import { lockCommand } from "./commands/lock.js";
import { logCommand } from "./commands/log.js";
import { pathInfoCommand } from "./commands/path-info.js";
import { pinCommand } from "./commands/pin.js";
import { planCommand } from "./commands/plan.js";
import { profileCommand } from "./commands/profile.js";
import { realizeCommand } from "./commands/realize.js";
import { seedCommand } from "./commands/seed.js";
import { rootsCommand } from "./commands/roots.js";
import { runCommand } from "./commands/run.js";
import { shellCommand } from "./commands/shell.js";
import { showDerivationCommand } from "./commands/show-derivation.js";
import { storeCommand } from "./commands/store.js";
import { targetsCommand } from "./commands/targets.js";
import { verifyCommand } from "./commands/verify.js";
import { watchCommand } from "./commands/watch.js";
import { whyCommand } from "./commands/why.js";
import { whyDependsCommand } from "./commands/why-depends.js";
import { installProcessHooks } from "./process-hooks.js";
import type { KilnCommand } from "./command.js";
import type { GlobalArgs } from "./context.js";

installProcessHooks();

// in the order --help lists them
const commands: KilnCommand[] = [
  realizeCommand,
  evalCommand,
  graphCommand,
  watchCommand,
  runCommand,
  shellCommand,
  showDerivationCommand,
  pathInfoCommand,
  logCommand,
  checkCommand,
  verifyCommand,
  storeCommand,
  targetsCommand,
  whyCommand,
  whyDependsCommand,
  planCommand,
  lockCommand,
  seedCommand,
  gcCommand,
  pinCommand,
  profileCommand,
  rootsCommand,
  duCommand,
  copyCommand,
  cacheCommand,
  builderServeCommand,
];

const globals: Argv<GlobalArgs> = yargs(hideBin(process.argv))
  .scriptName("kiln")
  .usage("$0 <command> [options]")
  .option("store", { type: "string", global: true, describe: "store directory (env KILN_STORE; default ~/.local/share/kiln)" })
  .option("recipes", { alias: "f", type: "string", global: true, describe: "recipe set entry file (default: nearest recipes/index.ts)" })
  .option("jobs", { alias: "j", type: "number", global: true, describe: "parallel builds (default: number of cores)" })
  .option("cores", { type: "number", global: true, describe: "cores each build may use (default: all)" })
  .option("keep-going", { alias: "k", type: "boolean", global: true, describe: "keep building what does not depend on a failure" })
  .option("reporter", { choices: ["tui", "plain", "json", "quiet"], global: true, describe: "progress output on stderr (default: tui on a terminal, else plain)" })
  .option("print-build-logs", { alias: "L", type: "boolean", global: true, describe: "print build logs as they come" })
  .option("eval-cache", { type: "boolean", default: true, global: true, describe: "answer a realize whose recipes, sources and host tools are unchanged from the record of the last identical one (--no-eval-cache, or env KILN_EVAL_CACHE=0: always evaluate, every recipe module, none standing in as its record)" })
  .option("mirror", { type: "string", array: true, global: true, describe: "local folder to look in for fixed-output files (env KILN_MIRRORS)" })
  .option("substituters", { type: "string", array: true, global: true, describe: "binary caches to fetch from before building: file:///DIR, http(s)://..., s3://BUCKET?endpoint=... (env KILN_SUBSTITUTERS; config substituters)" })
  .option("trusted-public-keys", { type: "string", array: true, global: true, describe: "keys (NAME:BASE64) whose signatures on cached paths are believed (env KILN_TRUSTED_PUBLIC_KEYS; config trusted-public-keys)" })
  .option("secret-key", { type: "string", global: true, describe: "secret key file that signs what is pushed to a cache (env KILN_SECRET_KEY_FILE; config secret-key-file)" })
  .option("builders", { type: "string", array: true, global: true, describe: "remote builders: ssh://[USER@]HOST[:PORT]?system=SYSTEM&jobs=N&key=FILE..., or @FILE with one a line (env KILN_BUILDERS; config builders)" })
  .option("cache-timeout", { type: "number", global: true, describe: "seconds without an answer after which a binary cache is given up (default 10; env KILN_CACHE_TIMEOUT)" });

const cli = commands
  .reduce((y, add) => add(y), globals)
  .demandCommand(1, "give a command; see kiln --help")
  .strict()
  .recommendCommands()
  .help()
  .version(false)
  // fd 1 asked directly: process.stdout would build its stream at every start (cli/output.ts)
  .wrap(Math.min(110, (isTerminal(1) && process.stdout.columns) || 100));

// yargs renders the whole help text after starting any command, in case the command fails later
// and the help must be shown for the right context: ~20 ms of every run. Kiln's commands report
// their own errors (cli/run.ts) and never hand a failure back to yargs, so the help is rendered
// only when asked for.
const usage = (cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
  .getInternalMethods?.().getUsageInstance?.();
if (usage && typeof usage.cacheHelpMessage === "function") usage.cacheHelpMessage = () => {};

/**
 * The run. The launcher (cli/kiln.ts) waits for it and reports what escaped every command as an
 * internal error; run directly (dist/cli/main.js, a TypeScript loader), a rejection ends the
 * process the same way an uncaught error does.
 */
export const done: Promise<unknown> = cli.parseAsync();

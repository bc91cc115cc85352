// `kiln plan` and `kiln eval` in a bundle of their own (dist/kiln-eval.cjs): the launcher runs it
// when cli/eval-args.ts reads the command line as a plain one of these. The run is the verb's own
// (cli/commands/plan.ts, eval.ts) in the context every store verb gets (cli/command.ts
// runStoreVerb: reporter, Ctrl-C, errors and exit codes, the store closed and backed up); what it
// leaves out of the full CLI is the argument parser and the other verbs.
import { runStoreVerb } from "./command.js";
import { evalVerb } from "./commands/eval.js";
import { planVerb } from "./commands/plan.js";
import { parseEvalArgs } from "./eval-args.js";
import { installProcessHooks } from "./process-hooks.js";

async function main(): Promise<void> {
  installProcessHooks();
  const line = parseEvalArgs(process.argv.slice(2));
  if (!line) throw new Error(`kiln-eval.cjs run for a command line it does not take: ${JSON.stringify(process.argv.slice(2))}`);
  // as yargs gives them to the full CLI's verbs: evaluation may use its records unless told not to
  const args = { "eval-cache": true, json: undefined, ...line.args };
  await (line.verb === "plan" ? runStoreVerb(planVerb, args) : runStoreVerb(evalVerb, args));
}

/** The run, as cli/main.ts's: the launcher reports what escapes it as an internal error. */
export const done: Promise<unknown> = main();

// kiln run <target> [-- args]: run a target's program where /kiln/store is the store, so that
// the store paths it names (its interpreter, its libraries, other programs) are there; the
// target is realized first if it is not in the store. The program's exit status is kiln's.
import type { Argv } from "yargs";
import type { GlobalArgs } from "../context.js";
import { launch, mainProgram, outputsOf } from "../launch.js";
import { reportError } from "../run.js";

interface Args extends GlobalArgs {
  target: string;
  args?: string[];
  "--"?: string[];
}

export const command = "run <target> [args..]";
export const describe = "run a target's program (the output itself, bin/<name>, or its only program) with the store at /kiln/store";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .positional("target", { type: "string", demandOption: true, describe: "a target, result link or store path" })
    .positional("args", { type: "string", array: true, describe: "arguments for the program (after --, anything goes)" })
    .parserConfiguration({ "populate--": true }) as unknown as Argv<Args>;
}

export async function handler(argv: Args): Promise<void> {
  const o = await outputsOf(argv, [argv.target]);
  if (!o) return;
  try {
    process.exitCode = await launch(o, [mainProgram(o, o.paths[0]!, argv.target), ...(argv.args ?? []), ...(argv["--"] ?? [])]);
  } catch (e) {
    process.exitCode = reportError(e);
  }
}

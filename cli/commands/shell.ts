// kiln shell <target...> [-- command args]: a shell (or the command) with the targets' bin folders
// first on PATH, where /kiln/store is the store; the targets are realized first if they are not
// in the store. Like `nix shell`: the user's directory, home and environment stay as they are.
import type { Argv } from "yargs";
import type { GlobalArgs } from "../context.js";
import { launch, outputsOf } from "../launch.js";
import { reportError } from "../run.js";

interface Args extends GlobalArgs {
  targets: string[];
  "--"?: string[];
}

export const command = "shell <targets..>";
export const describe = "start $SHELL (or the command after --) with the targets' programs on PATH and the store at /kiln/store";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .positional("targets", { type: "string", array: true, demandOption: true, describe: "targets, result links or store paths" })
    .parserConfiguration({ "populate--": true }) as unknown as Argv<Args>;
}

export async function handler(argv: Args): Promise<void> {
  const o = await outputsOf(argv, argv.targets);
  if (!o) return;
  const command = argv["--"]?.length ? argv["--"] : [process.env.SHELL || "/bin/sh"];
  try {
    process.exitCode = await launch(o, command);
  } catch (e) {
    process.exitCode = reportError(e);
  }
}

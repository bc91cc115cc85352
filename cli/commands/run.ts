// kiln run <target> [-- args]: run a target's program where /kiln/store is the store, so that
// the store paths it names (its interpreter, its libraries, other programs) are there; the
// target is realized first if it is not in the store. The program's exit status is kiln's.
import { defineCommand } from "../command.js";
import { afterDashes, launch, mainProgram, outputsOf } from "../launch.js";

export const runCommand = defineCommand({
  command: "run <target> [args..]",
  describe: "run a target's program (the output itself, bin/<name>, or its only program) with the store at /kiln/store",
  options: (y) => y
    .positional("target", { type: "string", demandOption: true, describe: "a target, result link or store path" })
    .positional("args", { type: "string", array: true, describe: "arguments for the program (after --, anything goes)" })
    .parserConfiguration({ "populate--": true }),
  // the store is opened (and closed) while the target is found; the program runs after
  store: false,
  run: async (argv) => {
    const o = await outputsOf(argv, [argv.target]);
    if (!o) return;
    return launch(o, [mainProgram(o, o.paths[0]!, argv.target), ...(argv.args ?? []), ...afterDashes(argv)]);
  },
});

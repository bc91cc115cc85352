// kiln shell <target...> [-- command args]: a shell (or the command) with the targets' bin folders
// first on PATH, where /kiln/store is the store; the targets are realized first if they are not
// in the store. Like `nix shell`: the user's directory, home and environment stay as they are.
import { defineCommand } from "../command.js";
import { afterDashes, launch, outputsOf } from "../launch.js";

export const shellCommand = defineCommand({
  command: "shell <targets..>",
  describe: "start $SHELL (or the command after --) with the targets' programs on PATH and the store at /kiln/store",
  options: (y) => y
    .positional("targets", { type: "string", array: true, demandOption: true, describe: "targets, result links or store paths" })
    .parserConfiguration({ "populate--": true }),
  // the store is opened (and closed) while the targets are found; the command runs after
  store: false,
  run: async (argv) => {
    const o = await outputsOf(argv, argv.targets);
    if (!o) return;
    const command = afterDashes(argv);
    return launch(o, command.length ? command : [process.env.SHELL || "/bin/sh"]);
  },
});

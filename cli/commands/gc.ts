// kiln gc: delete every store path not reachable from a root (result links, pins, generations,
// running kiln processes). Policies: --max-freed, --max-size (least recently used first),
// --older-than; --dry-run / --print-dead show what would go. Before the mark, --keep-generations
// and --delete-older-than delete profile generations; after the sweep, --history-older-than
// collects the history `why` reads, by its own policy. The work is cli/gc-run.ts's; a plain
// `kiln gc` command line is run by the launcher without this command (cli/gc-args.ts).
import { defineCommand } from "../command.js";
import { GC_OPTIONS } from "../gc-options.js";
import { runGc } from "../gc-run.js";

export const gcCommand = defineCommand({
  command: "gc",
  describe: "delete store paths that no root (result link, pin, profile generation, running kiln) needs",
  options: (y) => y.options(GC_OPTIONS),
  // as gc's own bundle: what gc does never depends on the builders' or caches' settings
  settings: false,
  run: (argv, ctx) => runGc(argv, ctx),
});

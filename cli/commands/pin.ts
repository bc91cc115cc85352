// kiln pin add|list|rm: named GC roots.
import { closureSize, loadGraph } from "../../store/gc.js";
import { addPin, listPins, removePin } from "../../store/roots.js";
import { defineCommand } from "../command.js";
import { recipesEntry } from "../context.js";
import { toStorePaths } from "../resolve-paths.js";
import { KilnError } from "../../store/errors.js";
import { human } from "../units.js";

const add = defineCommand({
  command: "add <name> <target>",
  describe: "pin a target (as realized in this store), a result link or a store path under a name",
  options: (y) => y.positional("name", { type: "string", demandOption: true }).positional("target", { type: "string", demandOption: true })
    .option("realize", { type: "boolean", describe: "realize the target first if it is not in the store yet (as nix-build -o)" }),
  // progress shows only when there may be something to build
  reporter: (argv) => (argv.realize ? argv.reporter : "quiet"),
  run: async (argv, ctx) => {
    const paths = await toStorePaths(ctx, recipesEntry(argv), [argv.target], {
      realize: Boolean(argv.realize),
      hint: (t) => `pin it once it is built: kiln pin add --realize ${argv.name} ${t}   (or kiln realize ${t} first)`,
    });
    if (paths.length !== 1) throw new KilnError("USAGE", `${argv.target} names ${paths.length} store paths; a pin holds one`, "pin each output under its own name");
    const { previous } = addPin(ctx.store, argv.name, paths[0]!, ctx.clock());
    process.stdout.write(`pinned ${argv.name} -> ${ctx.store.hostPath(paths[0]!)}${previous ? ` (was ${previous})` : ""}\n`);
  },
});

const list = defineCommand({
  command: "list",
  describe: "list pins with their closure sizes",
  options: (y) => y.option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const g = loadGraph(ctx.store);
    const rows = listPins(ctx.store).map((p) => {
      const i = g.index.get(p.path);
      const c = closureSize(g, i === undefined ? [] : [i]);
      return { name: p.name, path: ctx.store.hostPath(p.path), valid: i !== undefined, closurePaths: c.paths, closureBytes: c.bytes };
    });
    if (argv.json) process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    else for (const r of rows) process.stdout.write(`${r.name}\t${r.path}\t${human(r.closureBytes)}${r.valid ? "" : "\t(missing)"}\n`);
  },
});

const rm = defineCommand({
  command: "rm <name>",
  describe: "remove a pin (its paths go at the next gc unless something else roots them)",
  options: (y) => y.positional("name", { type: "string", demandOption: true }),
  run: async (argv, ctx) => {
    const path = removePin(ctx.store, argv.name);
    process.stdout.write(`unpinned ${argv.name} (${path})\n`);
  },
});

export const pinCommand = defineCommand({
  command: "pin <command>",
  describe: "named GC roots: keep a target or store path (and its closure) through kiln gc",
  subcommands: [add, list, rm],
});

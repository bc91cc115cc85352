// kiln pin add|list|rm: named GC roots.
import type { Argv } from "yargs";
import { closureSize, loadGraph } from "../../store/gc.js";
import { addPin, listPins, removePin } from "../../store/roots.js";
import { recipesEntry, type GlobalArgs } from "../context.js";
import { toStorePaths } from "../resolve-paths.js";
import { withContext } from "../run.js";
import { KilnError } from "../../store/errors.js";
import { human } from "../units.js";

interface AddArgs extends GlobalArgs {
  name: string;
  target: string;
  realize?: boolean;
}
interface RmArgs extends GlobalArgs {
  name: string;
}
interface ListArgs extends GlobalArgs {
  json?: boolean;
}

export const command = "pin <command>";
export const describe = "named GC roots: keep a target or store path (and its closure) through kiln gc";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .command<AddArgs>(
      "add <name> <target>",
      "pin a target (as realized in this store), a result link or a store path under a name",
      (y2) => y2.positional("name", { type: "string", demandOption: true }).positional("target", { type: "string", demandOption: true })
        .option("realize", { type: "boolean", describe: "realize the target first if it is not in the store yet (as nix-build -o)" }) as unknown as Argv<AddArgs>,
      (argv) =>
        // progress shows only when there may be something to build
        withContext({ ...argv, reporter: argv.realize ? argv.reporter : "quiet" }, async (ctx) => {
          const paths = await toStorePaths(ctx, recipesEntry(argv), [argv.target], {
            realize: Boolean(argv.realize),
            hint: (t) => `pin it once it is built: kiln pin add --realize ${argv.name} ${t}   (or kiln realize ${t} first)`,
          });
          if (paths.length !== 1) throw new KilnError("USAGE", `${argv.target} names ${paths.length} store paths; a pin holds one`, "pin each output under its own name");
          const { previous } = addPin(ctx.store, argv.name, paths[0]!, ctx.clock());
          process.stdout.write(`pinned ${argv.name} -> ${ctx.store.hostPath(paths[0]!)}${previous ? ` (was ${previous})` : ""}\n`);
        }),
    )
    .command<ListArgs>(
      "list",
      "list pins with their closure sizes",
      (y2) => y2.option("json", { type: "boolean" }) as unknown as Argv<ListArgs>,
      (argv) =>
        withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
          const g = loadGraph(ctx.store);
          const rows = listPins(ctx.store).map((p) => {
            const i = g.index.get(p.path);
            const c = closureSize(g, i === undefined ? [] : [i]);
            return { name: p.name, path: ctx.store.hostPath(p.path), valid: i !== undefined, closurePaths: c.paths, closureBytes: c.bytes };
          });
          if (argv.json) process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
          else for (const r of rows) process.stdout.write(`${r.name}\t${r.path}\t${human(r.closureBytes)}${r.valid ? "" : "\t(missing)"}\n`);
        }),
    )
    .command<RmArgs>(
      "rm <name>",
      "remove a pin (its paths go at the next gc unless something else roots them)",
      (y2) => y2.positional("name", { type: "string", demandOption: true }) as unknown as Argv<RmArgs>,
      (argv) =>
        withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
          const path = removePin(ctx.store, argv.name);
          process.stdout.write(`unpinned ${argv.name} (${path})\n`);
        }),
    )
    .demandCommand(1);
}

export function handler(): void {}

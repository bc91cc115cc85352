// kiln store <subcommand>: direct store operations.
import { copyFileSync, existsSync, lstatSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { Argv } from "yargs";
import { sha256File } from "../../store/digest.js";
import { KilnError } from "../../store/errors.js";
import { removeTree, validateName } from "../../store/paths.js";
import { type GlobalArgs } from "../context.js";
import { withContext } from "../run.js";

interface AddFixedArgs extends GlobalArgs {
  file: string;
  name?: string;
}

export const command = "store <command>";
export const describe = "store operations (add-fixed)";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .command<AddFixedArgs>(
      "add-fixed <file>",
      "add a file by hand, so fixed outputs with its sha256 are satisfied without fetching",
      (y2) => y2.positional("file", { type: "string", demandOption: true }).option("name", { type: "string", describe: "store name (default: the file's name)" }) as unknown as Argv<AddFixedArgs>,
      (argv) =>
        withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
          const file = resolve(argv.file);
          if (!existsSync(file) || !lstatSync(file).isFile()) throw new KilnError("USAGE", `${argv.file} is not a regular file`, "give the path of the downloaded file");
          const name = argv.name ?? basename(file);
          const bad = validateName(name);
          if (bad) throw new KilnError("USAGE", bad, "pass --name <store-name>");
          const sha = sha256File(file);
          const scratch = ctx.store.scratchDir("add-fixed");
          try {
            copyFileSync(file, join(scratch, name));
            const { path } = ctx.store.addOutput({ scratch: join(scratch, name), name, candidates: [], ca: `sha256:${sha}` }, (id) => ctx.store.insertFixed(sha, id));
            process.stdout.write(`${ctx.store.hostPath(path)}\nsha256 ${sha}\n`);
          } finally {
            removeTree(scratch);
          }
        }),
    )
    .demandCommand(1);
}

export function handler(): void {}

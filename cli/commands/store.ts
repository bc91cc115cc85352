// kiln store <subcommand>: direct store operations.
import { copyFileSync, existsSync, lstatSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { sha256File } from "../../store/digest.js";
import { KilnError } from "../../store/errors.js";
import { removeTree, validateName } from "../../store/paths.js";
import { defineCommand } from "../command.js";

const addFixed = defineCommand({
  command: "add-fixed <file>",
  describe: "add a file by hand, so fixed outputs with its sha256 are satisfied without fetching",
  options: (y) => y.positional("file", { type: "string", demandOption: true }).option("name", { type: "string", describe: "store name (default: the file's name)" }),
  run: async (argv, ctx) => {
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
  },
});

export const storeCommand = defineCommand({
  command: "store <command>",
  describe: "store operations (add-fixed)",
  subcommands: [addFixed],
});

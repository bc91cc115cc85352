// kiln watch <target...>: another name for kiln realize --watch (one implementation: realize.ts
// and ../watch.ts).
import { defineCommand } from "../command.js";
import { realizeOptions, realizeRun } from "./realize.js";

export const watchCommand = defineCommand({
  command: "watch <targets..>",
  describe: "the same as realize --watch: realize targets, then again whenever their recipe files or local sources change",
  options: realizeOptions,
  reporter: (argv) => argv.reporter,
  run: (argv, ctx) => realizeRun({ ...argv, watch: true }, ctx),
});

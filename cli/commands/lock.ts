// kiln lock: create or update kiln.lock (fixed outputs, host tools) and show what changed.
import { writeFileSync } from "node:fs";
import { diffLocks, renderDiff, renderLock } from "../../engine/lockfile.js";
import { recipesEntry } from "../context.js";
import { lockOfRecipeSet, lockPath, readLock } from "../lock-file.js";
import { EXIT } from "../run.js";
import { defineCommand } from "../command.js";

export const lockCommand = defineCommand({
  command: "lock",
  describe: "create or update kiln.lock (pinned fixed outputs and host tool fingerprints) and print what changed",
  options: (y) => y
    .option("check", { type: "boolean", describe: "only report drift; exit 3 if the lock would change" })
    .option("json", { type: "boolean", describe: "the changes as JSON" }),
  run: async (argv, ctx) => {
    const entry = recipesEntry(argv);
    const file = lockPath(entry);
    const old = readLock(file);
    const lock = await lockOfRecipeSet(ctx, entry);
    const changes = diffLocks(old, lock);
    if (argv.json) process.stdout.write(JSON.stringify({ file, created: !old, changes }, null, 2) + "\n");
    else if (changes.length === 0) process.stdout.write(`${file} is up to date\n`);
    else process.stdout.write(`${old ? (argv.check ? "would change" : "updated") : argv.check ? "would create" : "created"} ${file}:\n${renderDiff(changes)}\n`);
    if (argv.check) return changes.length ? EXIT.lockDrift : EXIT.ok;
    if (changes.length || !old) writeFileSync(file, renderLock(lock));
    return EXIT.ok;
  },
});

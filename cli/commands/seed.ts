// kiln seed lock: resolve the bootstrap seed's sets (sets.json) into its lock (seed.lock.json)
// with apt's solver on a private apt state, and show what changed.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { diffSeedLocks, parseSeedLock, parseSeedSets, renderSeedDiff, renderSeedLock, seedSize, type SeedLock } from "../../engine/seed-lock.js";
import { resolveSeed } from "../../engine/seed-resolve.js";
import { KilnError } from "../../store/errors.js";
import { defineCommand } from "../command.js";
import { recipesEntry, storeRoot } from "../context.js";
import { EXIT } from "../run.js";
import { human } from "../units.js";

const lockSets = defineCommand({
  command: "lock",
  describe: "resolve the seed's package sets (sets.json) with apt into seed.lock.json and print what changed",
  options: (y) =>
    y
      .option("sets", { type: "string", describe: "the sets file (default: std/seed/sets.json beside the recipe set's entry)" })
      .option("lock", { type: "string", describe: "the lock file (default: seed.lock.json beside the sets file)" })
      .option("apt-dir", { type: "string", describe: "private apt state: lists and caches (default: seed-apt in the store root)" })
      .option("update", { type: "boolean", default: true, describe: "fetch the archive's package lists first (--no-update: use those fetched last time)" })
      .option("check", { type: "boolean", describe: "only report; exit 1 if the lock would change" })
      .option("json", { type: "boolean", describe: "the changes as JSON" }),
  run: async (argv, ctx) => {
    const setsFile = argv.sets ? resolve(argv.sets) : join(dirname(recipesEntry(argv)), "std", "seed", "sets.json");
    const lockFile = argv.lock ? resolve(argv.lock) : join(dirname(setsFile), "seed.lock.json");
    if (!existsSync(setsFile)) throw new KilnError("USAGE", `no seed sets file at ${setsFile}`, "pass --sets FILE, or run in a project whose recipes have std/seed/sets.json");
    const sets = parseSeedSets(readFileSync(setsFile, "utf8"), setsFile);
    const old = existsSync(lockFile) ? parseSeedLock(readFileSync(lockFile, "utf8"), lockFile) : undefined;
    const lock = await resolveSeed(sets, {
      stateDir: argv["apt-dir"] ? resolve(argv["apt-dir"]) : join(storeRoot(argv), "seed-apt"),
      update: argv.update !== false,
      env: process.env,
      signal: ctx.signal,
      onLine: argv.json ? undefined : (l) => process.stderr.write(`${l}\n`),
    });
    const text = renderSeedLock(lock);
    const changed = !old || renderSeedLock(old) !== text;
    const changes = diffSeedLocks(old, lock);
    const shown = relative(process.cwd(), lockFile) || lockFile;
    if (argv.json) {
      process.stdout.write(JSON.stringify({ file: lockFile, created: !old, changed, changes, sets: sizes(lock) }, null, 2) + "\n");
    } else {
      process.stdout.write(summary(lock));
      const verb = !changed ? "is up to date" : old ? (argv.check ? "would change" : "updated") : argv.check ? "would be created" : "created";
      process.stdout.write(`${shown} ${verb}${changes.length ? `:\n${renderSeedDiff(changes)}` : ""}\n`);
    }
    if (argv.check) return changed ? EXIT.failed : EXIT.ok;
    if (changed) {
      const tmp = `${lockFile}.tmp-${process.pid}`;
      writeFileSync(tmp, text);
      renameSync(tmp, lockFile);
    }
    return EXIT.ok;
  },
});

export const seedCommand = defineCommand({
  command: "seed <command>",
  describe: "the bootstrap seed: pinned Debian packages builds run on (lock)",
  subcommands: [lockSets],
});

function sizes(lock: SeedLock): Record<string, ReturnType<typeof seedSize> & { arch: string }> {
  return Object.fromEntries(Object.keys(lock.sets).sort().map((s) => [s, { arch: lock.sets[s]!.arch, ...seedSize(lock, [s]) }]));
}

function summary(lock: SeedLock): string {
  const all = seedSize(lock, Object.keys(lock.sets));
  const rows = Object.entries(sizes(lock)).map(([name, s]) =>
    `  ${name.padEnd(18)} ${s.arch.padEnd(6)} ${String(s.packages).padStart(4)} packages ${human(s.size).padStart(10)} .deb ${human(s.installedSize).padStart(10)} installed\n`);
  return `seed ${lock.suite}: ${Object.keys(lock.sets).length} sets, ${all.packages} packages, ${human(all.size)} of .debs, ${human(all.installedSize)} installed\n${rows.join("")}`;
}

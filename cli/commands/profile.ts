// kiln profile list|history|rollback|delete-generations: the generations that
// `kiln realize --profile NAME` records (see store/profiles.ts).
import { join } from "node:path";
import { diffGenerations, storeLookup, type EntryChange } from "../../engine/history.js";
import { describeCause } from "../../engine/why.js";
import { KilnError } from "../../store/errors.js";
import {
  deleteGenerations, listProfiles, profileGenerations, profilesDir, switchGeneration, syncProfileLinks, type GenerationSpec,
} from "../../store/profiles.js";
import type { StorePathName } from "../../store/paths.js";
import type { LocalStore } from "../../store/local-store.js";
import { defineCommand } from "../command.js";
import { dateText, parseDuration } from "../units.js";

const SPEC_HINT = "give generation numbers (3 4), old (all but the current), +K (keep the newest K) or an age such as 30d (delete those older, as Nix does)";

/** A --delete-generations argument, as Nix spells them: N, old, +K, or an age (30d; any kiln duration). */
export function parseGenerationSpec(s: string): GenerationSpec {
  if (/^\d+$/.test(s)) return { kind: "number", n: Number(s) };
  if (s === "old") return { kind: "old" };
  if (/^\+\d+$/.test(s)) return { kind: "keep", newest: Number(s.slice(1)) };
  try {
    return { kind: "olderThan", ms: parseDuration(s, "generation") };
  } catch {
    throw new KilnError("USAGE", `bad generation spec ${JSON.stringify(s)}`, SPEC_HINT);
  }
}

function changeText(c: EntryChange, store: LocalStore): string {
  switch (c.change) {
    case "added":
      return `${c.name} added`;
    case "removed":
      return `${c.name} removed`;
    case "changed": {
      if (!c.derivations) return `${c.name}: same derivation, another output (${store.hostPath(c.new!.path as StorePathName)})`;
      const same = c.old!.path === c.new!.path ? ", output identical" : "";
      const causes = (c.causes ?? []).map((x) => describeCause(x)[0]);
      return `${c.name}: ${c.derivations} derivation${c.derivations === 1 ? "" : "s"} changed${same}${causes.length ? `; ${causes.join("; ")}` : ""}`;
    }
  }
}

const list = defineCommand({
  command: "list",
  describe: "list profiles: current generation, generations, the link to the current one",
  options: (y) => y.option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const rows = listProfiles(ctx.store).map((p) => ({ ...p, link: join(profilesDir(ctx.store), p.name) }));
    if (argv.json) process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    else for (const r of rows) process.stdout.write(`${r.name}\tgeneration ${r.current} (of ${r.generations.join(", ")})\t${r.link}\n`);
  },
});

const history = defineCommand({
  command: "history <name>",
  describe: "the generations of a profile: number, date, targets and store paths, the current one, and what changed",
  options: (y) => y.positional("name", { type: "string", demandOption: true }).option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const { current, generations } = profileGenerations(ctx.store, argv.name);
    const lookup = storeLookup(ctx.store);
    const rows = generations.map((g, i) => ({
      number: g.number, date: new Date(g.createdAt).toISOString(), current: g.number === current,
      path: ctx.store.hostPath(g.path),
      entries: g.entries.map((e) => ({ ...e, path: ctx.store.hostPath(e.path) })),
      changes: i === 0 ? [] : diffGenerations(generations[i - 1]!.entries, g.entries, lookup),
      ...(i === 0 ? {} : { previous: generations[i - 1]!.number }),
    }));
    if (argv.json) {
      process.stdout.write(JSON.stringify({ profile: argv.name, current, link: join(profilesDir(ctx.store), argv.name), generations: rows }, null, 2) + "\n");
      return;
    }
    const out: string[] = [`profile ${argv.name}: ${rows.length} generation${rows.length === 1 ? "" : "s"}, current ${current} (${join(profilesDir(ctx.store), argv.name)})`];
    generations.forEach((g, i) => {
      const r = rows[i]!;
      out.push(`generation ${g.number}  ${dateText(g.createdAt)}${r.current ? "  (current)" : ""}`);
      const width = Math.max(...r.entries.map((e) => e.name.length));
      for (const e of r.entries) out.push(`  ${e.name.padEnd(width)}  ${e.path}`);
      if (r.changes.length) out.push(`  since ${r.previous}: ${r.changes.map((c) => changeText(c, ctx.store)).join("; ")}`);
    });
    process.stdout.write(out.join("\n") + "\n");
  },
});

const rollback = defineCommand({
  command: "rollback <name>",
  describe: "switch a profile to its previous generation (--to N: to generation N)",
  options: (y) =>
    y.positional("name", { type: "string", demandOption: true })
      .option("to", { type: "number", describe: "the generation to switch to (default: the one before the current)" }),
  run: async (argv, ctx) => {
    if (argv.to !== undefined && (!Number.isInteger(argv.to) || argv.to < 1)) {
      throw new KilnError("USAGE", `--to ${argv.to}: not a generation number`, `see the generations with kiln profile history ${argv.name}`);
    }
    const { from, to } = switchGeneration(ctx.store, argv.name, argv.to ?? "previous");
    syncProfileLinks(ctx.store, argv.name);
    const link = join(profilesDir(ctx.store), argv.name);
    process.stdout.write(from === to ? `profile ${argv.name}: already at generation ${to} (${link})\n` : `profile ${argv.name}: switched from generation ${from} to ${to} (${link})\n`);
  },
});

const deleteGens = defineCommand({
  command: "delete-generations <name> <specs..>",
  describe: "delete generations of a profile (never the current one); kiln gc then collects what only they kept",
  options: (y) =>
    y.positional("name", { type: "string", demandOption: true })
      .positional("specs", { type: "string", array: true, demandOption: true, describe: "generation numbers; old (all but the current); +K (keep the newest K); an age such as 30d (those older, except the newest of them: it was current then)" })
      .option("dry-run", { alias: "n", type: "boolean", describe: "print what would be deleted" }),
  run: async (argv, ctx) => {
    const specs = argv.specs.map(String).map(parseGenerationSpec);
    const dry = Boolean(argv["dry-run"]);
    const gone = deleteGenerations(ctx.store, argv.name, specs, ctx.clock(), dry);
    if (!dry) syncProfileLinks(ctx.store, argv.name);
    for (const g of gone) process.stdout.write(`${dry ? "would delete" : "deleted"} generation ${g.number} of ${argv.name} (${dateText(g.createdAt)}, ${ctx.store.hostPath(g.path)})\n`);
    if (gone.length === 0) process.stdout.write(`no generation of ${argv.name} matches; nothing deleted\n`);
    else if (!dry) process.stdout.write(`${gone.length} generation${gone.length === 1 ? "" : "s"} deleted; kiln gc collects what only they kept\n`);
  },
});

export const profileCommand = defineCommand({
  command: "profile <command>",
  describe: "profiles: numbered generations of realized targets (kiln realize --profile NAME), rollback, deletion",
  subcommands: [list, history, rollback, deleteGens],
});

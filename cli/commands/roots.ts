// kiln roots: every GC root with its closure size (result links, pins, generations, running kilns).
import { closureSize, loadGraph } from "../../store/gc.js";
import { listRoots } from "../../store/roots.js";
import { human } from "../units.js";
import { defineCommand } from "../command.js";

export const rootsCommand = defineCommand({
  command: "roots",
  describe: "list every GC root and its closure size",
  options: (y) => y.option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const g = loadGraph(ctx.store);
    const { roots, stale } = listRoots(ctx.store);
    // temporary roots: one line per running process, not one per path
    const groups = new Map<string, { kind: string; name: string; paths: string[] }>();
    for (const r of roots) {
      const key = r.kind === "temp" ? r.name : `${r.name}\0${r.path}`;
      const grp = groups.get(key) ?? { kind: r.kind, name: r.name, paths: [] };
      grp.paths.push(r.path);
      groups.set(key, grp);
    }
    const rows = [...groups.values()].map((grp) => {
      const idx = grp.paths.map((p) => g.index.get(p)).filter((i): i is number => i !== undefined);
      const c = closureSize(g, idx);
      const label = grp.kind === "link" ? grp.name.slice(5) : grp.kind === "pin" ? grp.name.slice(4) : grp.kind === "temp" ? `pid ${grp.name.slice(5)}` : grp.name.replace(/^gen:/, "");
      return {
        kind: grp.kind, name: label,
        paths: grp.paths.map((p) => ctx.store.hostPath(p as never)),
        closurePaths: c.paths, closureBytes: c.bytes,
      };
    });
    const all = closureSize(g, roots.map((r) => g.index.get(r.path)).filter((i): i is number => i !== undefined));
    if (argv.json) {
      process.stdout.write(JSON.stringify({ roots: rows, stale, live: { paths: all.paths, bytes: all.bytes } }, null, 2) + "\n");
      return;
    }
    for (const r of rows) {
      const what = r.kind === "temp" ? `${r.paths.length} paths` : r.paths[0];
      process.stdout.write(`${r.kind.padEnd(10)} ${r.name}\t${what}\t${human(r.closureBytes)} (${r.closurePaths} paths)\n`);
    }
    for (const s of stale) process.stdout.write(`stale      ${s.name.replace(/^link:/, "")}\t(${s.reason}; dropped by the next gc)\n`);
    process.stdout.write(`${rows.length} roots keep ${all.paths} paths, ${human(all.bytes)}\n`);
  },
});

// Causes of a rebuild, made exact with what the recipe files and git can tell (for why, plan and
// the live view's build reasons): the recipe texts behind each side of a comparison (from the
// snapshots recorded with the history, or from git at the recorded revision), and the git commits
// that made the edits, the source files and the call sites.
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { locateKey, parsePosition, type CauseReport, type ExplainOptions, type WhyLookup } from "../engine/why.js";
import { recipeTexts, type RecipeTexts } from "../engine/recipe-snapshot.js";
import type { RecipesRev, TargetRealisation } from "../store/history.js";
import type { LocalStore } from "../store/local-store.js";
import { fileAtRevision, fileCommit, lineCommit, uncommitted } from "./git.js";

/** One side: a derivation, with the target realisation it was found in (if any). */
export interface Side {
  drvHash: string;
  row?: TargetRealisation;
  /** the snapshot of the evaluation that produced it, when it was just evaluated (plan, TUI) */
  snapshot?: string;
}

function snapshotOf(side: Side, lookup: WhyLookup): string | undefined {
  return side.snapshot ?? side.row?.snapshot ?? lookup.load(side.drvHash)?.meta.recipes;
}

/** The recipe texts at a clean git revision, for the files another side lists (history recorded before snapshots). */
function textsAtRevision(rev: RecipesRev | null | undefined, like: RecipeTexts): RecipeTexts | undefined {
  if (!rev || rev.dirty) return undefined;
  const files = new Map<string, string>();
  for (const rel of like.files.keys()) {
    const t = fileAtRevision(like.root, rev.rev, rel);
    if (t !== undefined) files.set(rel, t);
  }
  return files.size ? { root: like.root, files } : undefined;
}

/** The recipe texts for both sides, as explain() takes them; a side without any is left out. */
export function recipesOf(store: LocalStore, lookup: WhyLookup, old: Side, now: Side, root?: string): ExplainOptions {
  let o = recipeTexts(store, snapshotOf(old, lookup));
  let n = recipeTexts(store, snapshotOf(now, lookup));
  if (!o && n) o = textsAtRevision(old.row?.recipes, n);
  if (!n && o) n = textsAtRevision(now.row?.recipes, o);
  return { recipes: { ...(o ? { old: o } : {}), ...(n ? { new: n } : {}) }, ...(root ? { root } : {}) };
}

/**
 * Fill in what git knows, in place: for a recipe edit, the commit that last changed its line
 * (at the new side's revision when that was clean, else in the work tree, if the line is still
 * there); for a source file, its last commit; for a cause not traced to an edit, the call site's
 * line (an env key's own line when the file shows it) and its commit, as before.
 */
export function refineReports(reports: CauseReport[], rev?: RecipesRev | null): void {
  const at = rev && !rev.dirty ? rev.rev : undefined;
  const texts = new Map<string, string[] | undefined>();
  const lines = (f: string) => {
    if (!texts.has(f)) texts.set(f, existsSync(f) ? readFileSync(f, "utf8").split("\n") : undefined);
    return texts.get(f);
  };
  for (const r of reports) {
    const e = r.edit;
    if (e) {
      if (e.added.length === 0) {
        // a deletion: blame has no line to show; the commit whose diff removed the text
        const gone = e.removed[0]!;
        const still = at ? undefined : fileAtRevision(dirname(e.file), "HEAD", basename(e.file));
        e.commit = still?.includes(gone) ? "not committed yet" : fileCommit(e.file, { ...(at ? { rev: at } : {}), text: gone });
      } else if (at) {
        e.commit = lineCommit(e.file, e.line, at);
      } else {
        const cur = lines(e.file)?.[e.line - 1]?.trim();
        if (cur !== undefined && e.added.includes(cur)) e.commit = lineCommit(e.file, e.line);
      }
      // a recipe file git does not track yet has no commit
      if (e.commit === undefined && uncommitted(e.file)) e.commit = "not committed yet";
      if (e.commit === undefined) delete e.commit;
      continue;
    }
    for (const c of r.effects) {
      if (c.kind === "source" && c.path) {
        const commit = !at && uncommitted(c.path) ? "not committed yet" : fileCommit(c.path, at ? { rev: at } : {});
        if (commit) c.commit = commit;
        continue;
      }
      if (c.kind !== "env" && c.kind !== "script" && c.kind !== "fixed") continue;
      const p = c.position ? parsePosition(c.position) : undefined;
      if (!p) continue;
      const text = lines(p.file);
      if (text === undefined) continue;
      let line = p.line;
      if (c.kind === "env") {
        const found = locateKey(text.join("\n"), p.line, c.key);
        if (found !== undefined) {
          line = found;
          c.position = `${p.file}:${found}`;
        }
      }
      const commit = lineCommit(p.file, line);
      if (commit) c.commit = commit;
    }
  }
}


// Causes of a rebuild, made exact with what the recipe files and git can tell (for why, plan and
// the live view's build reasons).
import { existsSync, readFileSync } from "node:fs";
import { locateKey, parsePosition, type Cause } from "../engine/why.js";
import { lineCommit } from "./git.js";

/**
 * Make positions exact where the recipe file can tell: an env key's own line rather than the
 * derivation call's, and the commit that last changed that line when the recipes are in git.
 */
export function refineCauses(causes: Cause[]): void {
  const texts = new Map<string, string | undefined>();
  const read = (f: string) => {
    if (!texts.has(f)) texts.set(f, existsSync(f) ? readFileSync(f, "utf8") : undefined);
    return texts.get(f);
  };
  for (const c of causes) {
    if (c.kind !== "env" && c.kind !== "script" && c.kind !== "fixed") continue;
    const p = c.position ? parsePosition(c.position) : undefined;
    if (!p) continue;
    const text = read(p.file);
    if (text === undefined) continue;
    let line = p.line;
    if (c.kind === "env") {
      const at = locateKey(text, p.line, c.key);
      if (at !== undefined) {
        line = at;
        c.position = `${p.file}:${at}`;
      }
    }
    const commit = lineCommit(p.file, line);
    if (commit) c.commit = commit;
  }
}


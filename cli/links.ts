// Result links (./result, ./result-2, ./result-lib): named as Nix names them; made by realize and
// by its no-op fast path (so: node built-ins only).
import { lstatSync, symlinkSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { KilnError } from "../store/errors.js";

/** The link for the n-th (1-based) target output: result, result-2, ..., with -<output> unless "out". */
export function linkName(base: string, n: number, output: string): string {
  return resolve(`${base}${n > 1 ? `-${n}` : ""}${output !== "out" ? `-${output}` : ""}`);
}

/** Point `link` at `target`; refuses to replace anything but a symlink. */
export function replaceLink(link: string, target: string): void {
  try {
    const st = lstatSync(link);
    if (!st.isSymbolicLink()) throw new KilnError("USAGE", `${link} exists and is not a symlink; not replacing it`, "remove it or pass --out-link <name>");
    unlinkSync(link);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  symlinkSync(target, link);
}

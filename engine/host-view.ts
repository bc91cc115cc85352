// Running what was built, on the host: outputs name other store paths by the logical store path
// (/kiln/store/...), which exists only inside builds. `kiln run` and `kiln shell` start a command
// in a light mount namespace (bubblewrap, no root needed) that is the host as it is (every
// top-level entry of / bound in place, so the user's files, home, /dev, /proc and the network
// are all there) plus the store, read-only, at /kiln/store. A store whose real location is
// /kiln/store needs none of this: its outputs run directly.
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { LOGICAL_STORE } from "../store/paths.js";

export interface HostView {
  /** the command line to run: bwrap and its arguments, or the command itself */
  argv: string[];
  /** whether a namespace is used (false when the store already is at /kiln/store) */
  namespace: boolean;
}

/** How to run `command` (already resolved to a path or a name on PATH) so that /kiln/store is the store. */
export function hostView(o: { bwrap: string; storeDir: string; cwd: string; command: string[] }): HostView {
  if (o.storeDir === LOGICAL_STORE) return { argv: o.command, namespace: false };
  const top = LOGICAL_STORE.split("/")[1]!; // "kiln": the store's folder takes its place
  const a = [o.bwrap, "--unshare-user", "--die-with-parent"];
  for (const e of readdirSync("/").sort()) {
    if (e === top) continue;
    const p = `/${e}`;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue; // gone meanwhile
    }
    if (st.isSymbolicLink()) a.push("--symlink", readlinkSync(p), p);
    else a.push("--dev-bind", p, p);
  }
  a.push("--ro-bind", o.storeDir, LOGICAL_STORE, "--chdir", o.cwd, "--", ...o.command);
  return { argv: a, namespace: true };
}

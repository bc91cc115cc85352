// Fetching a fixed output: from the store under another name (the same bytes added by hand), or
// from its sources and the configured mirrors (engine/fetch.ts). Registered by its sha256.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { isKilnError, KilnError } from "../store/errors.js";
import { removeTree } from "../store/paths.js";
import { outputPathName } from "./derivation.js";
import type { Node } from "./evaluate.js";
import { fetchFixed } from "./fetch.js";
import type { StepEnv, StepOutcome } from "./steps.js";

/**
 * Fetch `n` into the store. `optional`: a builder can still make it, so finding it nowhere is
 * no failure (undefined, and a log line says why it is built instead).
 */
export async function fetchStep(s: StepEnv, n: Node, optional: boolean): Promise<StepOutcome | undefined> {
  const store = s.ctx.store;
  const sha256 = n.drv.fixed!.sha256;
  const scratch = store.scratchDir(`fetch-${n.name}`);
  try {
    const dir = join(scratch, "fetch");
    mkdirSync(dir, { recursive: true });
    const existing = store.fixedContent(sha256).find((p) => s.protect([p]));
    if (existing) {
      // the same bytes are in the store under another name (e.g. added by hand)
      copyFileSync(store.hostPath(existing), join(dir, "out"));
    } else {
      try {
        await fetchFixed({
          name: n.name, sha256, sources: n.meta.sources ?? [], mirrors: s.ctx.config.mirrors, dir,
          env: s.ctx.config.fetchEnv, signal: s.signal, onLine: (line) => s.log(n, line),
        });
      } catch (e) {
        if (optional && isKilnError(e) && e.code !== "CANCELLED") {
          s.log(n, `not found in its listed sources; building it: ${e.message.split("\n").slice(1).join("; ")}`);
          return undefined;
        }
        throw e;
      }
    }
    const { path, fresh } = store.addOutput(
      { scratch: join(dir, "out"), name: outputPathName(n.name, "out"), candidates: [], ca: `sha256:${sha256}`, deriver: n.hash },
      (id) => {
        store.insertFixed(sha256, id);
        store.insertRealisation(n.hash, "out", id);
      },
    );
    return { outputs: { out: path }, fresh: true, identical: !fresh };
  } finally {
    removeTree(scratch);
  }
}

/** Whether a fixed output with a builder may be found before building it: sources, mirrors, or the same bytes already stored. */
export function mayFetchFirst(s: StepEnv, n: Node): boolean {
  if (!n.drv.fixed || n.kind !== "build") return false;
  return (n.meta.sources?.length ?? 0) > 0 || s.ctx.config.mirrors.length > 0 || s.ctx.store.fixedContent(n.drv.fixed.sha256).length > 0;
}

export function cancelled(n: Node): KilnError {
  return new KilnError("CANCELLED", `${n.name}: cancelled`);
}

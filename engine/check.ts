// kiln check: rebuild already-realised nodes from scratch and compare bit for bit with what the
// store has. Nothing is registered; a differing rebuild is kept for inspection.
import { mkdirSync, renameSync } from "node:fs";
import { join, relative } from "node:path";
import { hashTree, walkTree } from "../store/archive.js";
import { KilnError } from "../store/errors.js";
import { removeTree, type StorePathName } from "../store/paths.js";
import { BuildLog } from "./build-log.js";
import { checkSystem, requestFor } from "./build-step.js";
import { requestSelfHash } from "./build-request.js";
import type { Context } from "./context.js";
import { resolveDerivation } from "./derivation.js";
import type { Graph, Node } from "./evaluate.js";
import { nodeRef, reachable } from "./graph.js";
import { inputsOf } from "./plan.js";
import type { NodeRef } from "./events.js";
import { Realizer } from "./realize.js";

export interface CheckResult {
  node: NodeRef;
  output: string;
  path: StorePathName;
  identical: boolean;
  /** relative paths that differ (or exist on one side only) */
  differences: string[];
  /** where the differing rebuild was kept */
  rebuilt?: string;
}

/** Files that differ between two trees, each hashed with its own self-reference normalised. */
export function diffTrees(a: string, aSelf: string, b: string, bSelf: string): string[] {
  const list = (root: string, self: string) => {
    const m = new Map<string, string>();
    walkTree(root, (p, st) => {
      const rel = relative(root, p) || ".";
      m.set(rel, st.isDirectory() ? "dir" : hashTree(p, { selfHash: self }).digest);
    });
    return m;
  };
  const ma = list(a, aSelf);
  const mb = list(b, bSelf);
  const out = new Set<string>();
  for (const [k, v] of ma) if (mb.get(k) !== v) out.add(k);
  for (const k of mb.keys()) if (!ma.has(k)) out.add(k);
  return [...out].sort();
}

export async function check(ctx: Context, graph: Graph, roots: Node[], recursive: boolean, keepDir: string): Promise<CheckResult[]> {
  const realizer = new Realizer(ctx);
  const first = await realizer.realize(graph, roots);
  if (first.failed.length) {
    throw new KilnError("BUILD_FAILED", `cannot check: ${first.failed.map((f) => f.node.name).join(", ")} failed to build`, "fix the build first");
  }
  const env = realizer.stepEnv();
  const results: CheckResult[] = [];
  for (const n of recursive ? reachable(graph, roots) : roots) {
    if (n.kind === "fetch" || n.drv.fixed) continue; // pinned by sha256 already
    const inputs = inputsOf(n, (d) => first.outputs.get(d.hash))!;
    const { resolved, hash } = resolveDerivation(n.drv, inputs, n.hash);
    const req = requestFor(env, resolved, hash);
    checkSystem(env, n, req);
    const scratch = ctx.store.scratchDir(`check-${n.name}`);
    const log = new BuildLog(join(scratch, "check.log"), (line) => env.log(n, line));
    ctx.events({ type: "checking", node: nodeRef(n) });
    const r = await ctx.builder.build(req, { signal: ctx.signal, onOutput: log.write }).finally(() => log.close());
    try {
      if (ctx.signal.aborted) throw new KilnError("CANCELLED", `${n.name}: cancelled`);
      if (r.exitCode !== 0) {
        const e = new KilnError("BUILD_FAILED", `the check rebuild of ${n.name} failed (exit ${r.exitCode}); the first build succeeded, so the build is not deterministic`);
        ctx.events({ type: "failed", node: nodeRef(n), message: e.describe(), logTail: log.tail });
        throw e;
      }
      for (const o of n.drv.outputs) {
        const have = first.outputs.get(n.hash)![o]!;
        const info = ctx.store.pathInfo(have)!;
        const host = r.outputs[o];
        const selfHash = requestSelfHash(req, o);
        const again = host ? hashTree(host, { selfHash }).digest : "(missing)";
        const res: CheckResult = { node: nodeRef(n), output: o, path: have, identical: again === info.narDigest, differences: [] };
        if (!res.identical && host) {
          res.differences = diffTrees(ctx.store.hostPath(have), have.slice(0, 32), host, selfHash);
          mkdirSync(keepDir, { recursive: true });
          res.rebuilt = join(keepDir, `${have}.check`);
          removeTree(res.rebuilt);
          renameSync(host, res.rebuilt);
        }
        ctx.events({ type: "checked", node: nodeRef(n), output: o, identical: res.identical, differences: res.differences });
        results.push(res);
      }
    } finally {
      r.release();
      removeTree(scratch);
    }
  }
  return results;
}

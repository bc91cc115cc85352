// kiln graph <target...>: the derivation graph as DOT (default), JSON (--json) or an SVG picture
// (--svg FILE, through Graphviz's dot), optionally with each node's state and last build from the
// store's history (--states). Builds nothing.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { plan, type PlanState } from "../../engine/plan.js";
import { reachable } from "../../engine/graph.js";
import { evaluateTargets } from "../../engine/targets.js";
import type { Node } from "../../engine/evaluate.js";
import { KilnError } from "../../store/errors.js";
import type { LocalStore } from "../../store/local-store.js";
import { recipesEntry } from "../context.js";
import { defineCommand } from "../command.js";

export interface GraphNode {
  drv: string;
  name: string;
  kind: "build" | "fetch";
  /** drv hashes of its inputs */
  deps: string[];
  /** --states: in the store already (cached), or what a realize would do */
  state?: PlanState;
  /** --states: the latest recorded build of this derivation */
  lastBuild?: { status: string; ms?: number; at: number };
}

export interface GraphDoc {
  roots: Array<{ target: string; drv: string; output: string }>;
  /** dependencies first */
  nodes: GraphNode[];
}

export async function graphOf(nodes: Node[], roots: GraphDoc["roots"], store?: LocalStore): Promise<GraphDoc> {
  const states = store ? await plan(store, nodes) : undefined;
  return {
    roots,
    nodes: nodes.map((n) => {
      const g: GraphNode = { drv: n.hash, name: n.name, kind: n.kind, deps: n.deps.map((d) => d.hash) };
      if (store && states) {
        g.state = states.get(n)!.state;
        const b = store.lastBuild(n.hash);
        if (b) g.lastBuild = { status: b.status, ...(b.ended_at !== null ? { ms: b.ended_at - b.started_at } : {}), at: b.started_at };
      }
      return g;
    }),
  };
}

const FILL: Record<PlanState | "failed", string> = { cached: "#c8e6c9", substitutable: "#b3e5fc", build: "#fff59d", fetch: "#bbdefb", unknown: "#eeeeee", failed: "#ffcdd2" };
const STATE_TEXT: Record<PlanState, string> = { cached: "in the store", substitutable: "to substitute", build: "to build", fetch: "to fetch", unknown: "to build unless cut off" };

const quote = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

const secs = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`);

/** DOT, edges from an input to what uses it (build order, left to right). */
export function toDot(g: GraphDoc): string {
  const targets = new Set(g.roots.map((r) => r.drv));
  const out = [
    "digraph kiln {",
    "  rankdir=LR;",
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
  ];
  for (const n of g.nodes) {
    const lines = [n.name];
    const attrs: string[] = [];
    if (n.state) {
      lines.push(STATE_TEXT[n.state]);
      const failed = n.lastBuild?.status === "failed" && n.state !== "cached";
      attrs.push(`fillcolor=${quote(failed ? FILL.failed : FILL[n.state])}`);
    }
    if (n.lastBuild) lines.push(`last build: ${n.lastBuild.status}${n.lastBuild.ms !== undefined ? ` ${secs(n.lastBuild.ms)}` : ""}`);
    if (n.kind === "fetch") attrs.push('shape="component"');
    if (targets.has(n.drv)) attrs.push("penwidth=2");
    attrs.unshift(`label=${quote(lines.join("\n")).replace(/\n/g, "\\n")}`, `tooltip=${quote(n.drv)}`);
    out.push(`  ${quote(n.drv)} [${attrs.join(", ")}];`);
  }
  for (const n of g.nodes) for (const d of n.deps) out.push(`  ${quote(d)} -> ${quote(n.drv)};`);
  out.push("}");
  return out.join("\n") + "\n";
}

/** Render DOT to an SVG file with Graphviz; a clear error when it is not installed. */
export function renderSvg(dot: string, file: string): void {
  const r = spawnSync("dot", ["-Tsvg", "-o", file], { input: dot, encoding: "utf8" });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new KilnError("HOST_TOOL_MISSING", "--svg needs Graphviz's `dot`, which is not installed (not found on PATH)",
      "install Graphviz (Debian: apt-get install graphviz), or write DOT with `kiln graph <target> > graph.dot` and render it elsewhere");
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new KilnError("USAGE", `dot -Tsvg failed (exit ${r.status}):\n${r.stderr}`, "check the Graphviz installation");
}

export const graphCommand = defineCommand({
  command: "graph <targets..>",
  describe: "the derivation graph as DOT (default), JSON (--json) or SVG (--svg FILE, needs Graphviz), with states from history (--states)",
  options: (y) => y
    .positional("targets", { type: "string", array: true, demandOption: true })
    .option("json", { type: "boolean", describe: "the graph as JSON" })
    .option("svg", { type: "string", describe: "render an SVG picture to this file with Graphviz's dot" })
    .option("states", { type: "boolean", describe: "each node's state (in the store or to build) and its last recorded build" })
    .conflicts("json", "svg"),
  run: async (argv, ctx) => {
    const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), argv.targets);
    const nodes = reachable(ev.evaluator.graph, ev.roots.map((r) => r.node));
    const g = await graphOf(nodes, ev.roots.map((r) => ({ target: r.target, drv: r.node.hash, output: r.output })), argv.states ? ctx.store : undefined);
    if (argv.json) {
      process.stdout.write(JSON.stringify(g, null, 2) + "\n");
      return;
    }
    const dot = toDot(g);
    if (argv.svg === undefined) {
      process.stdout.write(dot);
      return;
    }
    const file = resolve(argv.svg);
    renderSvg(dot, file);
    process.stdout.write(`${file}\n`);
  },
});

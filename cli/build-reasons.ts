// Why a node is being built, for the TUI: a few words on its row and the whole story in its why
// panel. The same machinery as `kiln why` and `kiln plan` (engine/why.ts): the node's derivation
// against the one of its name built before, down to the root causes (recipe line and commit, env,
// source file, pinned hash, host tool), or "new: never built before".
//
// Each node's baseline is taken when the plan arrives, before anything of the run is recorded:
// the latest successful build of another derivation with its name, and this derivation's own last
// build. The comparisons (SQLite reads) and the recipe lines' commits (git) are worked out off the
// render path, a few nodes per turn of the event loop: rendering only reads what is ready (short,
// lines), and asking for what is not yet queues it for the next turn (the why panel's node first).
// Only what a view shows is asked for: a plan may hold thousands of nodes.
import type { KilnEvent } from "../engine/events.js";
import { hashesOfName, storeLookup } from "../engine/history.js";
import { describeReport, explain, summarizeCause, type CauseReport, type WhyLookup } from "../engine/why.js";
import { previousBuilds } from "../store/history.js";
import type { BuildRow, LocalStore } from "../store/local-store.js";
import { recipesOf, refineReports } from "./causes.js";
import type { NodeView, PlanState } from "./reporters/view-state.js";

interface Baseline {
  plan: PlanState;
  /** the latest successful build of another derivation with this name */
  previous?: { drvHash: string; at?: number };
  /** this derivation's own last build */
  last?: { status: BuildRow["status"]; at: number };
}

interface Explained {
  short: string;
  /** the panel's lines (as things stand for the node), formatting only */
  lines: (n: NodeView) => string[];
  /** the causes' recipe lines and the commits that changed them (git): run once, off the render path, then dropped */
  refine?: () => void;
}

/** Nodes explained per turn of the event loop: builds and input go on in between. */
const BATCH = 16;

/** "3 min ago", "2 days ago". */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
}

export class BuildReasons {
  private store: LocalStore | undefined;
  private lookup: WhyLookup | undefined;
  private readonly baselines = new Map<string, Baseline>();
  private readonly explained = new Map<string, Explained>();
  /** what is still to work out, by drv: its name, and whether the panel (refined causes) is wanted */
  private readonly pending = new Map<string, { name: string; refine: boolean }>();
  /** the why panel's node: worked out before the rest */
  private first: string | undefined;
  private scheduled: NodeJS.Immediate | undefined;
  private idle: Array<() => void> = [];

  /** root: the recipe set's folder (source files are named relative to it) */
  constructor(private readonly o: { relativeTo: string; now: () => number; root?: string }) {}

  /** Take each node's baseline: call with the planned event, before the build records anything. */
  planned(store: LocalStore, e: Extract<KilnEvent, { type: "planned" }>): void {
    this.store = store;
    this.lookup = storeLookup(store);
    const runs = e.nodes.filter((n) => n.state !== "cached");
    const previous = previousBuilds(store, runs.map((n) => ({ hash: n.drv, name: n.name })));
    for (const n of e.nodes) {
      this.explained.delete(n.drv);
      if (n.state === "cached") {
        this.baselines.set(n.drv, { plan: n.state });
        continue;
      }
      const last = store.lastBuild(n.drv);
      this.baselines.set(n.drv, {
        plan: n.state,
        ...(previous.has(n.drv) ? { previous: previous.get(n.drv)! } : {}),
        ...(last ? { last: { status: last.status, at: last.started_at } } : {}),
      });
    }
  }

  /** A few words for the node's row, once worked out (until then undefined, and it is asked for). */
  short(n: NodeView): string | undefined {
    const x = this.explained.get(n.drv);
    if (!x) this.request(n.drv, n.name, false);
    return x?.short;
  }

  /** The why panel, once worked out (until then a line that says so, and it is asked for). */
  lines(n: NodeView): string[] | undefined {
    if (!this.baselines.has(n.drv)) return undefined;
    const x = this.explained.get(n.drv);
    if (!x || x.refine) {
      this.request(n.drv, n.name, true);
      return [`working out why ${n.name} is being built…`];
    }
    let lines: string[];
    try {
      lines = x.lines(n);
    } catch (e) {
      return [`cannot tell: ${(e as Error).message}`];
    }
    // planned to run, yet reused in the end
    if (lines && n.status === "cutoff" && this.baselines.get(n.drv)?.plan !== "cached") {
      return [`${n.name} was reused: the inputs it waited for were rebuilt, but came out identical (early cutoff)`, ...lines];
    }
    return lines;
  }

  /** Resolves once nothing is left to work out (for tests, and for a caller that wants it all). */
  settled(): Promise<void> {
    if (!this.pending.size) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Queue a node's explanation (with `refine`, the panel's: first in line) for the next turn of the event loop. */
  private request(drv: string, name: string, refine: boolean): void {
    const x = this.explained.get(drv);
    if (!this.baselines.has(drv) || (x && (!x.refine || !refine))) return;
    if (refine) this.first = drv;
    if (refine || !this.pending.has(drv)) this.pending.set(drv, { name, refine });
    this.scheduled ??= setImmediate(() => this.work());
  }

  private work(): void {
    this.scheduled = undefined;
    const order = this.first && this.pending.has(this.first) ? [this.first, ...this.pending.keys()] : [...this.pending.keys()];
    for (const drv of order.slice(0, BATCH)) {
      const p = this.pending.get(drv);
      if (!p) continue;
      this.pending.delete(drv);
      const x = this.explain(drv, p.name);
      if (x?.refine && p.refine) {
        try {
          x.refine();
        } catch {
          /* the commits are extra: the causes stand without them */
        }
        delete x.refine;
      }
    }
    if (this.pending.size) this.scheduled = setImmediate(() => this.work());
    else for (const r of this.idle.splice(0)) r();
  }

  private explain(drv: string, name: string): Explained | undefined {
    let x = this.explained.get(drv);
    if (x) return x;
    const b = this.baselines.get(drv);
    if (!b || !this.store || !this.lookup) return undefined;
    try {
      x = this.compute(drv, name, b, this.store, this.lookup);
    } catch (e) {
      // a view must not fall over on an explanation: say so and go on
      const msg = (e as Error).message;
      x = { short: "", lines: () => [`cannot tell: ${msg}`] };
    }
    this.explained.set(drv, x);
    return x;
  }

  private compute(drv: string, name: string, b: Baseline, store: LocalStore, lookup: WhyLookup): Explained {
    const n = { drv, name };
    const now = this.o.now();
    if (b.plan === "cached") {
      return {
        short: "",
        lines: (cur) => [cur.status === "cutoff"
          ? `${n.name} was reused: inputs of it were rebuilt, but came out identical (early cutoff)`
          : `${n.name} is not built: its output is in the store`],
      };
    }
    const lastFailed = b.last?.status === "failed" ? [`its last build, of this same derivation, failed ${ago(now - b.last.at)} (kiln log ${n.name})`] : [];
    // a fetch has no builds row: look for its earlier versions in recorded target trees
    const found = b.plan === "fetch" && !b.previous ? hashesOfName(store, lookup, n.name, 200).find((h) => h.drvHash !== n.drv) : undefined;
    const previous = b.previous ?? (found ? { drvHash: found.drvHash, at: found.row.at } : undefined);
    if (!previous) {
      if (b.last?.status === "built") {
        const line = `${n.name} is unchanged since its build ${ago(now - b.last.at)}, but ${b.plan === "unknown" ? "an input of it is not in the store and must be built first" : "its output is no longer in the store (collected by kiln gc?)"}`;
        return { short: b.plan === "unknown" ? "an input must be built first" : "output no longer in the store", lines: () => [line] };
      }
      if (lastFailed.length) return { short: "last build failed", lines: () => [`${n.name}: ${lastFailed[0]}`] };
      return { short: "new: never built before", lines: () => [`${n.name} is new: no derivation of that name was ever built in this store`] };
    }
    const report = explain(previous.drvHash, n.drv, lookup, recipesOf(store, lookup, { drvHash: previous.drvHash }, { drvHash: n.drv }, this.o.root));
    const causes = report.causes;
    const own = (c: CauseReport) => c.at.length === 1 && c.at[0] === n.name;
    const first = causes[0];
    const short = first
      ? `${summarizeCause(first.cause)}${own(first) ? "" : ` (in ${first.at[0]})`}${causes.length > 1 ? ` +${causes.length - 1} more` : ""}`
      : "changed";
    const what = b.previous ? "its last build" : "the version used last";
    return {
      short,
      // recipe lines and the commits that changed them, as kiln why shows them
      refine: () => refineReports(causes),
      lines: (cur: NodeView) => {
        const when = previous.at !== undefined ? `, ${b.previous ? "built" : "used"} ${ago(this.o.now() - previous.at)}` : "";
        const head = `${n.name} differs from ${what} (${previous.drvHash.slice(0, 12)}…${when}):`;
        const out = [head];
        for (const c of causes) {
          const [firstLine, ...rest] = describeReport(c, { relativeTo: this.o.relativeTo });
          out.push(`  [${c.id}] ${firstLine}`);
          for (const l of rest) out.push(`      ${l}`);
          if (!own(c)) out.push(`      in ${c.at.join(", ")}`);
        }
        if (!causes.length) out.push("  (no difference found in the recorded derivations)");
        out.push(...lastFailed.map((l) => `  ${l}`));
        if (cur.status === "waiting" && b.plan === "unknown") out.push("it waits for inputs being rebuilt: if they come out identical, early cutoff reuses it");
        return out;
      },
    };
  }
}

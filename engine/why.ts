// Why did it rebuild? A pairwise walk of two recorded derivation trees (old vs new, as stored in
// the derivations table), down to the root causes: the derivations whose own description
// changed, not merely because an input's hash changed.
//
// Pure: derivations and realisations come in through a lookup, so the diff is unit-testable on
// plain derivation JSON and works on any history, without re-evaluating old recipes.
//
// Inputs are matched by derivation name: input hashes always differ once anything below changed,
// names are what a user recognises and what stays stable across edits. Strings are compared with
// store hashes blanked, because every input placeholder and source path carries a hash that
// changes when its target changes; those changes are attributed to the input itself (recursion)
// or to inputSrcs (a source file whose content changed).
//
// Those per-derivation changes are effects. Given the recipe texts behind both sides, each effect
// is traced to the recipe edit that made it (engine/recipe-diff.ts), and the edit is the root
// cause: a constant shared by ten derivations is one cause with ten effects.
import { join, relative } from "node:path";
import type { Derivation, DerivationMeta, FetchSource, HostToolFingerprint } from "./derivation.js";
import { contextAt, diffRecipes, indexHunks, locate, type Change, type Hunk } from "./recipe-diff.js";
import { underRoot, type RecipeTexts } from "./recipe-snapshot.js";

export interface StoredDerivation {
  drv: Derivation;
  meta: DerivationMeta;
}

/** What the store knows about a derivation's realisation (its latest one). */
export interface Realised {
  resolved?: string;
  outputs?: Record<string, string>;
}

export interface WhyLookup {
  load(hash: string): StoredDerivation | undefined;
  realised(hash: string): Realised | undefined;
  /** a derivation's name, when it can be had without loading it (the inputs of a wide node are named by the hundred) */
  name?(hash: string): string | undefined;
  /** learn the names of these derivations at once, for name() to answer (a wide node's inputs: one query, not hundreds) */
  names?(hashes: readonly string[]): void;
}

export interface ToolSummary {
  path: string;
  package: string | null;
  version: string | null;
  digest: string;
}

export type Cause =
  /** commit: which git commit last changed the line at position, as a phrase (filled in by the CLI) */
  | { kind: "env"; drv: string; key: string; old: string | null; new: string | null; position?: string; commit?: string }
  | { kind: "script"; drv: string; removed: string[]; added: string[]; position?: string; commit?: string }
  | { kind: "field"; drv: string; field: "name" | "system" | "builder" | "args" | "outputs"; old: string; new: string; position?: string }
  /** file: relative to the recipe set's folder when known, else as recorded; path: the host path; commit as above */
  | { kind: "source"; file: string; path?: string; old: string | null; new: string | null; commit?: string }
  | { kind: "fixed"; drv: string; old: string; new: string; oldSources: string[]; newSources: string[]; position?: string; commit?: string }
  /** a change on the host, not in the recipes: host tools are the impure escape */
  | { kind: "hostTool"; impure: true; tool: string; old: ToolSummary | null; new: ToolSummary | null }
  | { kind: "input"; drv: string; input: string; change: "added" | "removed"; position?: string }
  | { kind: "unrecorded"; drv: string; hash: string; side: "old" | "new" };

/**
 * rebuilt: new output; identical: rebuilt but bit-identical to before (early cutoff: dependents
 * were cache hits); cached: not rebuilt, its inputs resolved to the same paths as before;
 * unknown: no realisation recorded.
 */
export type Status = "rebuilt" | "identical" | "cached" | "unknown";

export interface WhyNode {
  name: string;
  old: string;
  new: string;
  status: Status;
  /** identical, and a derivation using it was not rebuilt thanks to that: the wave stopped here */
  cutoff?: boolean;
  /** ids of the causes found at this derivation itself */
  causes: number[];
  /** inputs that changed too */
  inputs: WhyNode[];
}

export interface BlastRadius {
  /** derivations whose hash changed because of this cause (itself and its dependents) */
  changed: string[];
  rebuilt: string[];
  /** rebuilt but identical output: where the wave stopped */
  identical: string[];
  /** changed derivations that were cache hits thanks to early cutoff */
  cached: string[];
}

/** A recipe edit found to be the origin of some effects: the hunk of the diff, and its line. */
export interface RecipeEdit {
  /** host path of the recipe file (the new side's) */
  file: string;
  line: number;
  /** the enclosing declarations and keys, e.g. fragments.userspace */
  context?: string;
  removed: string[];
  added: string[];
  /** which git commit last changed the line (filled in by the CLI) */
  commit?: string;
}

export interface CauseReport {
  id: number;
  /** the first of `effects` (what the cause did to the first derivation it reached) */
  cause: Cause;
  /** what this cause changed, derivation by derivation */
  effects: Cause[];
  /** the recipe edit the effects come from, when the recipe texts of both sides are known */
  edit?: RecipeEdit;
  /** derivations where this cause appears (a host tool or source may be shared) */
  at: string[];
  blast: BlastRadius;
}

export interface ExplainOptions {
  /** the recipe texts behind the old and new derivations (engine/recipe-snapshot.ts) */
  recipes?: { old?: RecipeTexts; new?: RecipeTexts };
  /** the recipe set's folder: source files are named relative to it */
  root?: string;
}

export interface WhyReport {
  /** null when the two trees are the same */
  root: WhyNode | null;
  causes: CauseReport[];
  /** number of changed derivations */
  changed: number;
}

const STORE_HASH = /\/kiln\/store\/[0-9a-z]{32}-/g;
/** Blank the hash parts of store paths: their changes are explained by inputs and sources. */
export function normalise(s: string): string {
  return s.replace(STORE_HASH, "/kiln/store/…-");
}

function toolSummary(fp: HostToolFingerprint): ToolSummary {
  return { path: fp.path, package: fp.package, version: fp.version, digest: fp.digest };
}

function describeSource(s: FetchSource): string {
  if ("url" in s) return `url ${s.url}`;
  if ("deb" in s) return `deb ${s.deb.package} ${s.deb.version}${s.deb.arch ? ` (${s.deb.arch})` : ""}`;
  if ("debSource" in s) return `debian source ${s.debSource.package} ${s.debSource.version}: ${s.debSource.file}`;
  if ("npm" in s) return `npm ${s.npm.name}@${s.npm.version}`;
  if ("file" in s) return `file ${s.file}`;
  return `mirror ${s.mirror}`;
}

/** Lines of `a` missing from `b` (as a multiset), in order: a readable summary of a script edit. */
function minus(a: string[], b: string[]): string[] {
  const count = new Map<string, number>();
  for (const l of b) count.set(l, (count.get(l) ?? 0) + 1);
  const out: string[] = [];
  for (const l of a) {
    const c = count.get(l) ?? 0;
    if (c > 0) count.set(l, c - 1);
    else out.push(l);
  }
  return out;
}

const isScript = (d: Derivation) => d.args.length === 4 && d.args[0] === "-e" && d.args[1] === "-u" && d.args[2] === "-c";

/** Compare two derivation trees; `oldHash`/`newHash` are derivation hashes of the roots. */
export function explain(oldHash: string, newHash: string, lookup: WhyLookup, opts: ExplainOptions = {}): WhyReport {
  if (oldHash === newHash) return { root: null, causes: [], changed: 0 };
  const memo = new Map<string, WhyNode>();
  /** nodes after their inputs: blast radius lists come out in build order */
  const order: WhyNode[] = [];
  // effects in the order found (deepest first), each once however many derivations share it
  const effects = new Map<string, { cause: Cause; nodes: Set<WhyNode> }>();
  const parents = new Map<WhyNode, Set<WhyNode>>();
  const nameOf = (h: string) => lookup.name?.(h) ?? lookup.load(h)?.drv.name ?? `?${h.slice(0, 8)}`;
  const root = opts.root ?? opts.recipes?.new?.root;

  const addEffect = (node: WhyNode, key: string, cause: Cause) => {
    let e = effects.get(key);
    if (!e) effects.set(key, (e = { cause, nodes: new Set() }));
    e.nodes.add(node);
  };

  const visit = (o: string, n: string): WhyNode => {
    const key = `${o}>${n}`;
    const seen = memo.get(key);
    if (seen) return seen;
    const od = lookup.load(o);
    const nd = lookup.load(n);
    const node: WhyNode = { name: nd?.drv.name ?? od?.drv.name ?? `?${n.slice(0, 8)}`, old: o, new: n, status: status(o, n, lookup), causes: [], inputs: [] };
    memo.set(key, node);
    if (!od || !nd) {
      const side = !od ? "old" : "new";
      addEffect(node, `unrecorded:${side === "old" ? o : n}`, { kind: "unrecorded", drv: node.name, hash: side === "old" ? o : n, side });
      order.push(node);
      return node;
    }
    // inputs first, so the causes come out deepest first: the order in which they took effect
    if (!nd.drv.fixed) {
      lookup.names?.([...Object.keys(od.drv.inputDrvs), ...Object.keys(nd.drv.inputDrvs)]);
      for (const [oi, ni] of pairInputs(od.drv, nd.drv, nameOf, (input, change) =>
        addEffect(node, `input:${node.name}:${input}:${change}`, { kind: "input", drv: node.name, input, change, ...pos(nd) }))) {
        const child = visit(oi, ni);
        node.inputs.push(child);
        let ps = parents.get(child);
        if (!ps) parents.set(child, (ps = new Set()));
        ps.add(node);
      }
    }
    for (const [k, c] of ownChanges(od, nd, root)) addEffect(node, k, c);
    order.push(node);
    return node;
  };

  const top = visit(oldHash, newHash);

  // root causes: the recipe edit each effect comes from, or the effect itself
  const causes = new Map<string, { id: number; cause: Cause; effects: Cause[]; edit?: RecipeEdit; nodes: Set<WhyNode> }>();
  const hunks = opts.recipes?.old && opts.recipes.new ? indexHunks(diffRecipes(opts.recipes.old, opts.recipes.new)) : [];
  const newTexts = opts.recipes?.new;
  for (const [key, e] of effects) {
    const change = hunks.length ? changeOf(e.cause) : undefined;
    const found = change ? locate(change, hunks) : [];
    const keys = found.length ? found.map((f) => ({ key: `edit:${f.hunk.id}`, edit: toEdit(f.hunk, f.line, newTexts!) })) : [{ key, edit: undefined }];
    for (const k of keys) {
      let c = causes.get(k.key);
      if (!c) causes.set(k.key, (c = { id: causes.size + 1, cause: e.cause, effects: [], ...(k.edit ? { edit: k.edit } : {}), nodes: new Set() }));
      c.effects.push(e.cause);
      for (const n of e.nodes) {
        c.nodes.add(n);
        if (!n.causes.includes(c.id)) n.causes.push(c.id);
      }
    }
  }

  // blast radius: the cause's own derivations and every changed derivation above them
  const reports: CauseReport[] = [...causes.values()].map((c) => {
    const affected = new Set<WhyNode>();
    const stack = [...c.nodes];
    while (stack.length) {
      const x = stack.pop()!;
      if (affected.has(x)) continue;
      affected.add(x);
      for (const p of parents.get(x) ?? []) stack.push(p);
    }
    const list = order.filter((n) => affected.has(n));
    const names = (f: (n: WhyNode) => boolean) => [...new Set(list.filter(f).map((n) => n.name))];
    return {
      id: c.id, cause: c.cause, effects: c.effects, ...(c.edit ? { edit: c.edit } : {}), at: names((n) => c.nodes.has(n)),
      blast: {
        changed: names(() => true),
        rebuilt: names((n) => n.status === "rebuilt" || n.status === "identical"),
        // where the wave really stopped: rebuilt, identical, and a dependent spared because of it
        identical: names((n) => n.status === "identical" && cutOff(n, parents)),
        cached: names((n) => n.status === "cached"),
      },
    };
  });
  for (const n of memo.values()) if (n.status === "identical" && cutOff(n, parents)) n.cutoff = true;
  return { root: top, causes: reports, changed: memo.size };
}

/** An identical rebuild cut the wave off only if some derivation using it was not rebuilt. */
function cutOff(n: WhyNode, parents: Map<WhyNode, Set<WhyNode>>): boolean {
  return [...(parents.get(n) ?? [])].some((p) => p.status === "cached");
}

/** A derivation change as text, for locating it in the recipe diff; undefined for kinds that are not recipe text. */
function changeOf(c: Cause): Change | undefined {
  const one = (s: string | null | undefined) => (s === null || s === undefined ? [] : [normalise(s)]);
  switch (c.kind) {
    case "env":
      return { added: c.new === null ? [] : [`${c.key}=${normalise(c.new)}`], removed: c.old === null ? [] : [`${c.key}=${normalise(c.old)}`] };
    case "script":
      return { added: c.added, removed: c.removed };
    case "field":
      return { added: one(c.new), removed: one(c.old) };
    case "fixed":
      return { added: [c.new, ...c.newSources], removed: [c.old, ...c.oldSources] };
    case "input":
      return c.change === "added" ? { added: [c.input], removed: [] } : { added: [], removed: [c.input] };
    default:
      return undefined;
  }
}

function toEdit(h: Hunk, line: number, texts: RecipeTexts): RecipeEdit {
  const context = contextAt(texts.files.get(h.file) ?? "", line);
  const trim = (ls: string[]) => ls.map((l) => l.trim()).filter(Boolean);
  return { file: join(texts.root, h.file), line, ...(context ? { context } : {}), removed: trim(h.old), added: trim(h.new) };
}

function pos(d: StoredDerivation): { position?: string } {
  return d.meta.position ? { position: d.meta.position } : {};
}

function status(o: string, n: string, lookup: WhyLookup): Status {
  const ro = lookup.realised(o);
  const rn = lookup.realised(n);
  if (ro?.resolved && rn?.resolved && ro.resolved === rn.resolved) return "cached";
  if (!ro?.outputs || !rn?.outputs) return "unknown";
  const ko = Object.keys(ro.outputs).sort();
  const kn = Object.keys(rn.outputs).sort();
  const same = ko.length === kn.length && ko.every((k, i) => k === kn[i] && ro.outputs![k] === rn.outputs![k]);
  return same ? "identical" : "rebuilt";
}

/**
 * Whether a derivation differs from another in its own description (env, script, builder, host
 * tools, sources, pinned hash, the names of its inputs), not merely in what its inputs hash to:
 * if it does, no realisation of the other can ever serve it, whatever its inputs come out as.
 */
export function differsOnItsOwn(o: StoredDerivation, n: StoredDerivation, nameOf: (h: string) => string): boolean {
  let inputs = false;
  pairInputs(o.drv, n.drv, nameOf, () => (inputs = true));
  return inputs || ownChanges(o, n, undefined).length > 0;
}

/** Changed input pairs (old hash, new hash), matched by name; added/removed ones are reported. */
function pairInputs(od: Derivation, nd: Derivation, nameOf: (h: string) => string, report: (input: string, change: "added" | "removed") => void): Array<[string, string]> {
  const group = (d: Derivation) => {
    const m = new Map<string, string[]>();
    for (const h of Object.keys(d.inputDrvs)) {
      const name = nameOf(h);
      m.set(name, [...(m.get(name) ?? []), h]);
    }
    return m;
  };
  const og = group(od);
  const ng = group(nd);
  const pairs: Array<[string, string]> = [];
  for (const name of [...new Set([...og.keys(), ...ng.keys()])].sort()) {
    const olds = og.get(name) ?? [];
    const news = ng.get(name) ?? [];
    // unchanged inputs of the same name pair with themselves; the rest pair up in order
    const o = olds.filter((h) => !news.includes(h));
    const n = news.filter((h) => !olds.includes(h));
    for (let i = 0; i < Math.min(o.length, n.length); i++) pairs.push([o[i]!, n[i]!]);
    for (let i = n.length; i < o.length; i++) report(name, "removed");
    for (let i = o.length; i < n.length; i++) report(name, "added");
  }
  return pairs;
}

/** The changes of a derivation itself, each with a key that identifies the same cause elsewhere. */
function ownChanges(o: StoredDerivation, n: StoredDerivation, root: string | undefined): Array<[string, Cause]> {
  const out: Array<[string, Cause]> = [];
  const drv = n.drv.name;
  const p = pos(n);
  const od = o.drv;
  const nd = n.drv;
  if (od.name !== nd.name) out.push([`field:${drv}:name`, { kind: "field", drv, field: "name", old: od.name, new: nd.name, ...p }]);

  // a fixed output is its pinned hash: nothing else about it matters
  if (od.fixed || nd.fixed) {
    const os = od.fixed?.sha256 ?? "(not fixed)";
    const ns = nd.fixed?.sha256 ?? "(not fixed)";
    if (os !== ns) {
      out.push([`fixed:${drv}:${os}:${ns}`, {
        kind: "fixed", drv, old: os, new: ns,
        oldSources: (o.meta.sources ?? []).map(describeSource), newSources: (n.meta.sources ?? []).map(describeSource), ...p,
      }]);
    }
    if (od.fixed && nd.fixed) return out;
  }

  if (od.system !== nd.system) out.push([`field:${drv}:system`, { kind: "field", drv, field: "system", old: od.system, new: nd.system, ...p }]);
  if (normalise(od.builder) !== normalise(nd.builder)) out.push([`field:${drv}:builder`, { kind: "field", drv, field: "builder", old: od.builder, new: nd.builder, ...p }]);
  if (od.outputs.join(",") !== nd.outputs.join(",")) out.push([`field:${drv}:outputs`, { kind: "field", drv, field: "outputs", old: od.outputs.join(" "), new: nd.outputs.join(" "), ...p }]);

  if (isScript(od) && isScript(nd)) {
    const a = normalise(od.args[3]!).split("\n");
    const b = normalise(nd.args[3]!).split("\n");
    const removed = minus(a, b).map((l) => l.trim()).filter(Boolean);
    const added = minus(b, a).map((l) => l.trim()).filter(Boolean);
    if (normalise(od.args[3]!) !== normalise(nd.args[3]!)) out.push([`script:${drv}`, { kind: "script", drv, removed, added, ...p }]);
  } else {
    const a = od.args.map(normalise);
    const b = nd.args.map(normalise);
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push([`field:${drv}:args`, { kind: "field", drv, field: "args", old: JSON.stringify(od.args), new: JSON.stringify(nd.args), ...p }]);
  }

  for (const key of [...new Set([...Object.keys(od.env), ...Object.keys(nd.env)])].sort()) {
    const a = od.env[key];
    const b = nd.env[key];
    if (a !== undefined && b !== undefined && normalise(a) === normalise(b)) continue;
    if (a === undefined && b === undefined) continue;
    out.push([`env:${drv}:${key}`, { kind: "env", drv, key, old: a ?? null, new: b ?? null, ...p }]);
  }

  for (const [a, b] of pairSources(o, n)) {
    const path = (b && n.meta.srcs?.[b]) ?? (a && o.meta.srcs?.[a]) ?? undefined;
    const file = path ? (root ? underRoot(root, path) : path) : (b ?? a)!.slice(33);
    out.push([`source:${file}:${a}:${b}`, { kind: "source", file, ...(path ? { path } : {}), old: a, new: b }]);
  }

  for (const tool of [...new Set([...Object.keys(od.hostTools), ...Object.keys(nd.hostTools)])].sort()) {
    const a = od.hostTools[tool];
    const b = nd.hostTools[tool];
    if (a && b && a.digest === b.digest && a.path === b.path && a.version === b.version && a.package === b.package) continue;
    out.push([`tool:${tool}:${a?.digest}:${a?.version}:${b?.digest}:${b?.version}`, { kind: "hostTool", impure: true, tool, old: a ? toolSummary(a) : null, new: b ? toolSummary(b) : null }]);
  }
  return out;
}

/**
 * Local sources that changed, as (old, new) store paths, null for one added or removed. A store
 * path is name + content, so one on both sides did not change, wherever it was copied from (the
 * same recipes in another clone). The rest pair by the host path they were copied from (two
 * main.c in two folders are two files), then by name, the host paths sharing the longest tail
 * winning (one file edited in a clone at another path; derivations recorded without host paths).
 */
function pairSources(o: StoredDerivation, n: StoredDerivation): Array<[string | null, string | null]> {
  const inNew = new Set(n.drv.inputSrcs);
  const inOld = new Set(o.drv.inputSrcs);
  const gone = o.drv.inputSrcs.filter((s) => !inNew.has(s));
  const come = n.drv.inputSrcs.filter((s) => !inOld.has(s));
  const hostOld = (s: string) => o.meta.srcs?.[s];
  const hostNew = (s: string) => n.meta.srcs?.[s];
  const tail = (a: string | undefined, b: string | undefined) => {
    if (!a || !b) return 0;
    const x = a.split("/").reverse();
    const y = b.split("/").reverse();
    let k = 0;
    while (k < x.length && k < y.length && x[k] === y[k]) k++;
    return k;
  };
  const pairs: Array<[string | null, string | null]> = [];
  const left = new Set(come);
  for (const g of gone) {
    let best: string | undefined;
    let bestTail = -1;
    for (const c of left) {
      if (c.slice(33) !== g.slice(33) && (hostOld(g) === undefined || hostOld(g) !== hostNew(c))) continue;
      const t = hostOld(g) !== undefined && hostOld(g) === hostNew(c) ? Infinity : tail(hostOld(g), hostNew(c));
      if (t > bestTail) (best = c), (bestTail = t);
    }
    if (best) left.delete(best);
    pairs.push([g, best ?? null]);
  }
  for (const c of left) pairs.push([null, c]);
  return pairs.sort(([a, b], [c, d]) => ((b ?? a)!.slice(33) < (d ?? c)!.slice(33) ? -1 : 1));
}

// ---- rendering ---------------------------------------------------------------------------------

export interface RenderOptions {
  /** positions are shown relative to this folder */
  relativeTo?: string;
}

const q = (s: string | null) => (s === null ? "(unset)" : JSON.stringify(s));
const short = (h: string) => h.slice(0, 12);

function showPosition(position: string | undefined, o: RenderOptions): string | undefined {
  if (!position) return undefined;
  if (!o.relativeTo || !position.startsWith("/")) return position;
  const r = relative(o.relativeTo, position);
  return r.startsWith("../../") ? position : r;
}

function toolText(t: ToolSummary | null): string {
  if (!t) return "(not declared)";
  const pkg = t.package ? `${t.package} ${t.version ?? "?"}` : t.path;
  return `${pkg} [${short(t.digest)}]`;
}

/** One line summarising a cause, plus detail lines. */
export function describeCause(c: Cause, o: RenderOptions = {}): string[] {
  const where = (p: string | undefined, commit?: string) => {
    const s = showPosition(p, o);
    return s ? [`at ${s}${commit ? ` (${commit})` : ""}`] : [];
  };
  switch (c.kind) {
    case "env":
      return [`env ${c.key} of ${c.drv}: ${q(c.old)} → ${q(c.new)}`, ...where(c.position, c.commit)];
    case "script":
      return [`the build script of ${c.drv} changed`, ...where(c.position, c.commit), ...c.removed.slice(0, 6).map((l) => `- ${l}`), ...c.added.slice(0, 6).map((l) => `+ ${l}`)];
    case "field":
      return [`${c.field} of ${c.drv}: ${c.old} → ${c.new}`, ...where(c.position)];
    case "source": {
      const when = c.commit ? [c.commit] : [];
      if (c.old && c.new) return [`source file ${c.file} changed (content ${c.old.slice(0, 8)}… → ${c.new.slice(0, 8)}…)`, ...when];
      return [c.new ? `source file ${c.file} added` : `source file ${c.file} removed`, ...when];
    }
    case "fixed": {
      const lines = [`fixed output ${c.drv}: sha256 ${short(c.old)}… → ${short(c.new)}…`, ...where(c.position, c.commit)];
      const gone = c.oldSources.filter((s) => !c.newSources.includes(s));
      const added = c.newSources.filter((s) => !c.oldSources.includes(s));
      for (const s of gone) lines.push(`- ${s}`);
      for (const s of added) lines.push(`+ ${s}`);
      return lines;
    }
    case "hostTool": {
      const what = c.old && c.new && c.old.package && c.old.version !== c.new.version ? "version" : "fingerprint";
      return [`host change (impure): host tool ${c.tool} ${what}: ${toolText(c.old)} → ${toolText(c.new)}`,
        "the build runs this tool from the host, outside its inputs: take it from the seed (usr) to make the build pure"];
    }
    case "input":
      return [`input ${c.input} of ${c.drv} ${c.change}`, ...where(c.position)];
    case "unrecorded":
      return [`${c.drv}: the ${c.side} derivation ${short(c.hash)}… is not recorded in this store (cannot look further)`];
  }
}

/** A cause in a few words, for a row of a live view: "env CFLAGS changed", "source main.c changed". */
export function summarizeCause(c: Cause): string {
  switch (c.kind) {
    case "env":
      return `env ${c.key} ${c.old === null ? "added" : c.new === null ? "removed" : "changed"}`;
    case "script":
      return "build script changed";
    case "field":
      return `${c.field} changed`;
    case "source":
      return `source ${c.file} ${c.old === null ? "added" : c.new === null ? "removed" : "changed"}`;
    case "fixed":
      return "pinned sha256 changed";
    case "hostTool":
      return `host tool ${c.tool} ${c.old && c.new && c.old.package && c.old.version !== c.new.version ? "upgraded" : "changed"} (impure)`;
    case "input":
      return `input ${c.input} ${c.change}`;
    case "unrecorded":
      return "earlier version not recorded";
  }
}

const STATUS_TEXT: Record<Status, string> = {
  rebuilt: "rebuilt",
  identical: "rebuilt, output identical",
  cached: "not rebuilt: its inputs came out identical",
  unknown: "changed (no realisation recorded)",
};

function statusText(n: WhyNode): string {
  return `${STATUS_TEXT[n.status]}${n.cutoff ? ": early cutoff" : ""}`;
}

function blastText(b: BlastRadius): string[] {
  const lines = [`blast radius: ${b.changed.length} derivation${b.changed.length === 1 ? "" : "s"} changed, ${b.rebuilt.length} rebuilt${b.rebuilt.length ? ` (${b.rebuilt.join(", ")})` : ""}`];
  if (b.identical.length) lines.push(`early cutoff at ${b.identical.join(", ")}: rebuilt, came out identical`);
  if (b.cached.length) lines.push(`not rebuilt thanks to early cutoff: ${b.cached.join(", ")}`);
  return lines;
}

/**
 * A root cause as lines: a recipe edit (where, the lines it changed, and what that did to each
 * derivation, alike effects merged: `env CFLAGS of app1, app2`), or the one change itself.
 */
export function describeReport(r: Pick<CauseReport, "cause" | "effects" | "edit">, o: RenderOptions = {}): string[] {
  if (!r.edit) return describeCause(r.cause, o);
  const e = r.edit;
  const out = [`${showPosition(`${e.file}:${e.line}`, o)}${e.context ? `, in ${e.context}` : ""}${e.commit ? ` (${e.commit})` : ""}`];
  const some = (ls: string[], sign: string) => [...ls.slice(0, 6).map((l) => `${sign} ${l}`), ...(ls.length > 6 ? [`${sign} … ${ls.length - 6} more lines`] : [])];
  out.push(...some(e.removed, "-"), ...some(e.added, "+"));
  // the same change in several derivations: once, with their names
  const groups = new Map<string, { drvs: string[]; lines: string[] }>();
  for (const c of r.effects) {
    const drv = "drv" in c ? c.drv : undefined;
    const lines = describeCause(drv === undefined ? c : ({ ...c, drv: "\0", position: undefined } as Cause), o).filter((l) => !l.startsWith("at "));
    const key = lines.join("\n");
    const g = groups.get(key) ?? groups.set(key, { drvs: [], lines }).get(key)!;
    if (drv !== undefined && !g.drvs.includes(drv)) g.drvs.push(drv);
  }
  for (const g of groups.values()) {
    const [first, ...rest] = g.lines.map((l) => l.replace("\0", g.drvs.join(", ")));
    out.push(`→ ${first}`, ...rest.map((l) => `  ${l}`));
  }
  return out;
}

/** A readable tree of changed derivations, then each root cause once with its blast radius. */
export function renderWhy(r: WhyReport, o: RenderOptions = {}): string[] {
  if (!r.root) return ["nothing changed: the two derivations are the same"];
  const out: string[] = [];
  const byId = new Map(r.causes.map((c) => [c.id, c]));
  const printed = new Set<WhyNode>();
  const walk = (n: WhyNode, prefix: string, last: boolean, top: boolean) => {
    const head = top ? "" : `${prefix}${last ? "└─ " : "├─ "}`;
    const again = printed.has(n) && n.inputs.length > 0;
    out.push(`${head}${n.name}  ${statusText(n)}${again ? "  (see above)" : ""}`);
    if (again) return;
    printed.add(n);
    const inner = top ? "" : `${prefix}${last ? "   " : "│  "}`;
    const items = n.causes.length + n.inputs.length;
    n.causes.forEach((id, i) => {
      // the cause as it shows at this derivation: its own effect
      const c = byId.get(id)!;
      const mine = c.effects.find((e) => "drv" in e && e.drv === n.name) ?? c.cause;
      out.push(`${inner}${i === items - 1 ? "└─" : "├─"} [${id}] ${describeCause(mine, o)[0]}`);
    });
    n.inputs.forEach((child, i) => walk(child, inner, n.causes.length + i === items - 1, false));
  };
  walk(r.root, "", true, true);
  out.push("", `root cause${r.causes.length === 1 ? "" : "s"}:`);
  for (const c of r.causes) {
    const [first, ...rest] = describeReport(c, o);
    out.push(`[${c.id}] ${first}`);
    for (const l of rest) out.push(`    ${l}`);
    if (c.cause.kind === "source" || c.cause.kind === "hostTool") out.push(`    used by ${c.at.join(", ")}`);
    for (const l of blastText(c.blast)) out.push(`    ${l}`);
  }
  return out;
}

/**
 * The line of an env key inside a derivation call: the recipe position names the call
 * (`derivation({` at file:line:col); the key is usually a few lines below it.
 */
export function locateKey(text: string, fromLine: number, key: string): number | undefined {
  const lines = text.split("\n");
  const re = new RegExp(`(^|[\\s{,])(["']?)${key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\2\\s*:`);
  for (let i = Math.max(0, fromLine - 1); i < Math.min(lines.length, fromLine + 200); i++) {
    if (i > fromLine - 1 && /\b(derivation|fetch)\(\{/.test(lines[i]!)) return undefined; // the next recipe
    if (re.test(lines[i]!)) return i + 1;
  }
  return undefined;
}

export function parsePosition(position: string): { file: string; line: number; column: number } | undefined {
  const m = /^(.*):(\d+):(\d+)$/.exec(position);
  return m ? { file: m[1]!, line: Number(m[2]), column: Number(m[3]) } : undefined;
}

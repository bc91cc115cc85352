// Where was the change written? `why` knows *what* changed in a derivation (an env value, script
// lines, a pinned hash) but a derivation only records the call site of derivation(), and real
// recipes compute their values far from it: constants, helper functions, spreads, other modules.
// JavaScript strings cannot carry their origin, and tracking it during evaluation would slow
// every evaluation for the sake of the rare `why`.
//
// So the origin is found afterwards, from the recipe texts: every evaluation records the recipe
// files it read (engine/recipe-snapshot.ts); `why` diffs the texts behind the two derivations it
// compares, line by line, and matches each hunk against the tokens that appeared in (or vanished
// from) the derivation. `const OPT = "-O1"` → `"-O2"` changes the token -O1 into -O2, and so does
// env CFLAGS; adding `IKCONFIG: "y"` to a kconfig fragment adds the token IKCONFIG, which the
// added script line CONFIG_IKCONFIG=y contains. Each derivation change is explained by the
// hunks that account for most of its changed tokens, greedily, so one edit used by many
// derivations is one root cause, and an unrelated edit in the same diff is not blamed. Pure.
import type { RecipeTexts } from "./recipe-snapshot.js";

export interface Hunk {
  /** index in the diff, identifying the edit */
  id: number;
  /** path relative to the recipe set's folder */
  file: string;
  /** first line of the hunk in the old and the new text (1-based); for a pure deletion, the new line it sits before */
  oldStart: number;
  newStart: number;
  old: string[];
  new: string[];
}

/** What changed in a derivation, as text: lines (or values) that appeared and vanished. */
export interface Change {
  added: string[];
  removed: string[];
}

export interface Located {
  hunk: Hunk;
  /** the line of the new text that the change is best explained by */
  line: number;
}

/** The hunks between two sets of recipe texts, file by file (files gone from the new side are left out: nothing there to point at). */
export function diffRecipes(a: RecipeTexts, b: RecipeTexts): Hunk[] {
  const out: Hunk[] = [];
  for (const file of [...b.files.keys()].sort()) {
    const nt = b.files.get(file)!;
    const ot = a.files.get(file);
    if (ot === nt) continue;
    for (const h of diffLines(ot === undefined ? [] : ot.split("\n"), nt.split("\n"))) out.push({ id: out.length, file, ...h });
  }
  return out;
}

/** A line diff: common prefix and suffix trimmed, the rest by longest common subsequence. */
export function diffLines(a: string[], b: string[]): Array<Omit<Hunk, "id" | "file">> {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const am = a.slice(pre, a.length - suf);
  const bm = b.slice(pre, b.length - suf);
  if (am.length === 0 && bm.length === 0) return [];
  // a huge rewrite is one hunk: the table below would cost n*m
  if (am.length * bm.length > 4_000_000) return [{ oldStart: pre + 1, newStart: pre + 1, old: am, new: bm }];
  const n = am.length;
  const m = bm.length;
  const lcs = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] = am[i] === bm[j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!);
    }
  }
  const hunks: Array<Omit<Hunk, "id" | "file">> = [];
  let cur: Omit<Hunk, "id" | "file"> | undefined;
  let i = 0;
  let j = 0;
  const open = () => (cur ??= { oldStart: pre + i + 1, newStart: pre + j + 1, old: [], new: [] });
  while (i < n || j < m) {
    if (i < n && j < m && am[i] === bm[j]) {
      if (cur) hunks.push(cur), (cur = undefined);
      i++, j++;
    } else if (j < m && (i === n || lcs[i * (m + 1) + j + 1]! >= lcs[(i + 1) * (m + 1) + j]!)) {
      open().new.push(bm[j++]!);
    } else {
      open().old.push(am[i++]!);
    }
  }
  if (cur) hunks.push(cur);
  return hunks;
}

const TOKEN = /[A-Za-z0-9_][A-Za-z0-9_.+-]*|-[A-Za-z0-9_.+-]+/g;

export function tokens(lines: string[]): Set<string> {
  const out = new Set<string>();
  for (const l of lines) for (const t of l.match(TOKEN) ?? []) out.add(t);
  return out;
}

/** Tokens of `a` that `b` does not have. */
function minusTokens(a: Set<string>, b: Set<string>): string[] {
  return [...a].filter((t) => !b.has(t));
}

/** How strongly a hunk token stands for a changed token: its length, if the changed token contains it. */
function weight(changed: string, t: string): number {
  return (t.length >= 2 || t === changed) && changed.includes(t) ? t.length : 0;
}

interface HunkTokens {
  hunk: Hunk;
  appeared: string[];
  vanished: string[];
}

/** Precomputed token sets of a diff's hunks, for locating many changes against one diff. */
export function indexHunks(hunks: Hunk[]): HunkTokens[] {
  return hunks.map((hunk) => {
    const o = tokens(hunk.old);
    const n = tokens(hunk.new);
    return { hunk, appeared: minusTokens(n, o), vanished: minusTokens(o, n) };
  });
}

/** The hunks that explain a change, best first; none when no hunk shares a changed token. */
export function locate(change: Change, hunks: HunkTokens[]): Located[] {
  const added = tokens(change.added);
  const removed = tokens(change.removed);
  // each changed token, with whether it appeared or vanished; a long script is capped
  let todo = [...minusTokens(added, removed).map((t) => ({ t, appeared: true })), ...minusTokens(removed, added).map((t) => ({ t, appeared: false }))].slice(0, 400);
  const picked: Located[] = [];
  const explains = (h: HunkTokens, c: { t: string; appeared: boolean }) => {
    let best = 0;
    for (const t of c.appeared ? h.appeared : h.vanished) best = Math.max(best, weight(c.t, t));
    return best;
  };
  while (todo.length) {
    let best: HunkTokens | undefined;
    let bestScore = 0;
    for (const h of hunks) {
      if (picked.some((p) => p.hunk === h.hunk)) continue;
      let score = 0;
      for (const c of todo) score += explains(h, c);
      if (score > bestScore) (best = h), (bestScore = score);
    }
    if (!best) break;
    picked.push({ hunk: best.hunk, line: bestLine(best, todo) });
    todo = todo.filter((c) => explains(best!, c) === 0);
  }
  return picked;
}

/** The line of the hunk's new text carrying most of the changed tokens (its first for a deletion). */
function bestLine(h: HunkTokens, todo: Array<{ t: string; appeared: boolean }>): number {
  let line = h.hunk.newStart;
  let bestScore = 0;
  h.hunk.new.forEach((text, k) => {
    const mine = new Set(h.appeared);
    let score = 0;
    for (const t of tokens([text])) if (mine.has(t)) for (const c of todo) if (c.appeared) score += weight(c.t, t);
    if (score > bestScore) (bestScore = score), (line = h.hunk.newStart + k);
  });
  return line;
}

const NAMED_OPENERS: RegExp[] = [
  /^(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)/,
  /^(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)/,
  /^(["'`]?)([\w$.-]+)\1\s*:/,
  /^(?:(?:public|private|protected|static|async|get|set)\s+)*([A-Za-z_$][\w$]*)\s*\([^)]*\)\s*(?::[^{]*)?\{$/,
];

/**
 * Where a line sits, as the names of the enclosing declarations and object keys, outermost first
 * (`fragments.userspace`, `kernel.script`): read from indentation, the way the code is laid out.
 */
export function contextAt(text: string, line: number): string | undefined {
  const lines = text.split("\n");
  const indent = (l: string) => l.length - l.trimStart().length;
  const target = lines[line - 1];
  if (target === undefined) return undefined;
  let cur = target.trim() ? indent(target) : Infinity;
  const names: string[] = [];
  for (let i = line - 2; i >= 0 && cur > 0; i--) {
    const l = lines[i]!;
    const t = l.trim();
    // a closing line belongs to a sibling block above, not to this line's
    if (!t || indent(l) >= cur || /^[}\])]/.test(t)) continue;
    cur = indent(l);
    if (!/[{[(`]$/.test(t)) continue;
    for (const re of NAMED_OPENERS) {
      const m = re.exec(t);
      if (m) {
        names.unshift(m[m.length - 1]!);
        break;
      }
    }
  }
  return names.length ? names.join(".") : undefined;
}

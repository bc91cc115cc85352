// Results: rows of the table, printed as they come and written to JSON at the end.
import type { Summary } from "./measure.js";

export interface Ratio {
  /** the anchor's tool name */
  anchor: string;
  /** kiln median / anchor median */
  value: number;
}

export interface Goal {
  text: string;
  met: boolean;
  /** the figure the goal is judged on, as printed */
  actual: string;
}

export interface Row {
  section: string;
  /** the workload, e.g. "deep 1k (1000 drvs)" */
  case: string;
  /** who ran it: "kiln", or an anchor */
  tool: string;
  /** what was run, for the record */
  command?: string;
  unit: "ms" | "s" | "x" | "us";
  time?: Summary;
  /** median peak RSS in MiB */
  rssMiB?: number;
  /** for kiln rows, against each anchor of the same case */
  ratios?: Ratio[];
  goals?: Goal[];
  /** free text: throughput, phase breakdown, caveats */
  note?: string;
}

export interface Skip {
  section: string;
  what: string;
  reason: string;
}

export class Report {
  readonly rows: Row[] = [];
  readonly skipped: Skip[] = [];
  readonly notes: string[] = [];
  private lastSection = "";

  constructor(private readonly out: (s: string) => void) {}

  section(title: string, detail: string, unit: "ms" | "s"): void {
    this.lastSection = title;
    this.out(`\n== ${title} ==\n${detail ? `   ${detail}\n` : ""}`);
    this.out(`   ${pad("case", 26)} ${pad("tool", 20)} ${lpad(`median ${unit}`, 10)} ${pad("  [min - max]", 20)} ${lpad("RSS MiB", 7)}  kiln/anchor\n`);
  }

  add(row: Row): void {
    this.rows.push(row);
    const t = row.time;
    const scale = row.unit === "s" ? 1000 : 1;
    const f = (x: number) => fmtNum(x / scale);
    const times = t ? `${lpad(f(t.median), 10)} ${pad(`  [${f(t.min)} - ${f(t.max)}]`, 20)}` : `${lpad("-", 10)} ${pad("", 20)}`;
    const rss = lpad(row.rssMiB !== undefined ? row.rssMiB.toFixed(0) : "", 7);
    const ratios = (row.ratios ?? []).map((r) => `${fmtRatio(r.value)} ${r.anchor}`).join(", ");
    this.out(`   ${pad(row.case, 26)} ${pad(row.tool, 20)} ${times} ${rss}  ${ratios}\n`.trimEnd() + "\n");
    for (const g of row.goals ?? []) this.out(`   ${pad("", 26)} goal: ${g.text}: ${g.actual} -> ${g.met ? "MET" : "NOT MET"}\n`);
    if (row.note) this.out(`   ${pad("", 26)} ${row.note}\n`);
  }

  skip(what: string, reason: string, section = this.lastSection): void {
    this.skipped.push({ section, what, reason });
    this.out(`   skipped: ${what}: ${reason}\n`);
  }

  note(text: string): void {
    this.notes.push(text);
    this.out(`   note: ${text}\n`);
  }
}

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return "-";
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

export function fmtRatio(x: number): string {
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}
function lpad(s: string, n: number): string {
  return s.length >= n ? s : " ".repeat(n - s.length) + s;
}

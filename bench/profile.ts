// Summarise a V8 CPU profile (node --cpu-prof): self time by function and by file, and inclusive
// time, so a slow row of the bench can be explained without opening a profiler UI.
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof dist/kiln.cjs --store S -f G.ts realize root --no-link
//   node --import tsx bench/profile.ts /tmp/prof/CPU.*.cpuprofile [top-N]
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function label(cf: CallFrame): string {
  const url = (cf.url || "(native)").replace(/^file:\/\//, "").replace(/.*node_modules\//, "node_modules/");
  return `${cf.functionName || "(anonymous)"} ${url}:${cf.lineNumber + 1}`;
}

export function summarizeProfile(p: CpuProfile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const sampled = new Map<number, number>();
  p.samples.forEach((id, i) => sampled.set(id, (sampled.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = [...sampled.values()].reduce((a, b) => a + b, 0);

  const self = new Map<string, number>();
  const byFile = new Map<string, number>();
  const incl = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  for (const [id, t] of sampled) {
    const n = byId.get(id)!;
    add(self, label(n.callFrame), t);
    add(byFile, (n.callFrame.url || "(native)").replace(/^file:\/\//, "").replace(/.*node_modules\//, "node_modules/"), t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur)!.callFrame);
      if (!seen.has(k)) {
        seen.add(k);
        add(incl, k, t);
      }
    }
  }
  const list = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
      .map(([k, v]) => `${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`).join("\n");
  return [
    `${(total / 1000).toFixed(1)} ms sampled over ${((p.endTime - p.startTime) / 1000).toFixed(1)} ms`,
    `\n-- self time by function --\n${list(self, top)}`,
    `\n-- self time by file --\n${list(byFile, 12)}`,
    `\n-- inclusive time --\n${list(incl, top)}`,
  ].join("\n");
}

if (process.argv[1]?.endsWith("profile.ts")) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: node --import tsx bench/profile.ts <file.cpuprofile> [top-N]\n");
    process.exit(2);
  }
  process.stdout.write(summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, Number(process.argv[3] ?? 25)) + "\n");
}

// gc on synthetic stores: load + mark, and the sweep, at 10k and 100k paths.
//   node --import tsx bench/gc.ts [--sizes 10000,100000]   (NOFILES=1: database side only, no files on disk)
// Each store is a 'wide' graph: N leaves gathered by groups of 100 (each group path references
// its 100 leaves) and one top path referencing every group; the top is not rooted, half of the
// groups are pinned, so half of the store is live and half is deleted. Every path is a small file
// on disk, registered by direct inserts (building 100k derivations would take hours).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collectGarbage } from "../store/gc.js";
import { hashPart } from "../store/digest.js";
import { removeTree } from "../store/paths.js";
import { LocalStore } from "../store/local-store.js";
import { fillSynthetic, type SyntheticPath } from "../store/test-helpers/direct.js";

const arg = process.argv.indexOf("--sizes");
const sizes = arg > 0 ? process.argv[arg + 1]!.split(",").map(Number) : [10_000, 100_000];

function populate(n: number): LocalStore {
  const root = mkdtempSync(join(tmpdir(), "kiln-bench-gc-"));
  const store = LocalStore.open(root);
  const groups = Math.ceil(n / 100);
  const name = (i: number) => `${hashPart(`bench-${i}`)}-p${i}`;
  const total = n + groups + 1;
  const paths: SyntheticPath[] = [];
  for (let i = 1; i <= total; i++) paths.push({ id: i, path: name(i), lastUsed: i, ...(process.env.NOFILES ? {} : { content: "x".repeat(100) }) });
  const edges: Array<[number, number]> = [];
  const pins: Array<[string, string]> = [];
  for (let l = 1; l <= n; l++) edges.push([n + 1 + Math.floor((l - 1) / 100), l]);
  for (let gi = 0; gi < groups; gi++) {
    edges.push([total, n + 1 + gi]);
    if (gi % 2 === 0) pins.push([`g${gi}`, name(n + 1 + gi)]);
  }
  fillSynthetic(store, paths, edges, pins);
  return store;
}

const rows: string[] = [];
for (const n of sizes) {
  const t0 = Date.now();
  const store = populate(n);
  const setup = Date.now() - t0;
  const dry = await collectGarbage(store, { dryRun: true, now: Date.now });
  const s0 = Date.now();
  const r = await collectGarbage(store, { now: Date.now });
  const gcMs = Date.now() - s0;
  rows.push(
    `${String(store.allPaths().length + r.deleted.length).padStart(7)} paths: load ${dry.ms.load} ms, mark ${dry.ms.mark} ms, order ${dry.ms.order} ms (dry run); ` +
      `full gc ${gcMs} ms (load ${r.ms.load}, mark ${r.ms.mark}, sweep ${r.ms.sweep}) deleting ${r.deleted.length}; setup ${setup} ms`,
  );
  process.stderr.write(rows[rows.length - 1] + "\n");
  store.close();
  removeTree(store.root);
}
process.stdout.write(rows.join("\n") + "\n");

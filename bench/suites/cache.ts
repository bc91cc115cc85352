// Row 6: binary caches. A closure is pushed once (untimed) to a local HTTP cache (nginx with
// WebDAV, as in the tests), then:
//   - substitute: `kiln realize TARGET` into an empty store with only the cache, against building
//     it (a real build into an empty store for the small closure; for pi4-llm-os, whose first
//     build takes 15-40 minutes here, the build times the source store recorded, summed);
//   - archive and restore throughput of the cache's format (deterministic tar + zstd -3, the
//     compiled store/path-archive.js) against `tar -c | zstd -3` and `zstd -d | tar -x` on the
//     same store paths.
// The workload is pi4-llm-os's disk image when it is realized in --pi4-store for this checkout's
// recipes, else fixtures/hello's greeting (a closure of a few small paths).
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { LocalStore } from "../../store/local-store.js";
import type { StorePathName } from "../../store/paths.js";
import { ensureSeedDebs, SEED_DEB_CACHE } from "../../cli/test-helpers/fixture-seed.js";
import { startNginx } from "../../cli/test-helpers/servers.js";
import type { Bench } from "../lib/context.js";
import { measureRoundRobin, summarize, type Contender } from "../lib/measure.js";
import { removeTree, run, runUnchecked } from "../lib/proc.js";
import { fmtNum } from "../lib/report.js";

const SECTION = "6. Binary cache";

interface Workload {
  label: string;
  cwd: string;
  target: string;
  /** a store where the target is realized */
  store: string;
  /** build it for real as the anchor (small closures), or take the recorded build times */
  buildAnchor: boolean;
  /** for kiln: the fixtures' seed .debs from the tests' cache, so that no row measures a download from Debian */
  env?: Record<string, string>;
}

function workload(b: Bench): Workload {
  const pi4 = runUnchecked({ argv: [...b.kiln, "--store", b.opts.pi4Store, "--reporter", "quiet", "plan", "--json", "pi4-llm-os"], cwd: b.repo, capture: true, timeoutMs: 300_000 });
  if (pi4.status === 0) {
    const f = JSON.parse(pi4.stdout) as { counts: Record<string, number> };
    const waiting = Object.entries(f.counts).filter(([k]) => k !== "cached").reduce((s, [, v]) => s + v, 0);
    if (waiting === 0) return { label: "pi4-llm-os disk", cwd: b.repo, target: "pi4-llm-os", store: b.opts.pi4Store, buildAnchor: false };
  }
  b.report.note(`pi4-llm-os is not realized in ${b.opts.pi4Store} for these recipes: the cache rows use fixtures/hello's greeting`);
  const store = join(b.cache, "cache-hello-store");
  ensureSeedDebs();
  const env = { KILN_MIRRORS: SEED_DEB_CACHE };
  run({ argv: [...b.kiln, "--store", store, "--reporter", "quiet", "realize", "--no-link", "greeting"], cwd: join(b.repo, "fixtures", "hello"), env });
  return { label: "hello closure", cwd: join(b.repo, "fixtures", "hello"), target: "greeting", store, buildAnchor: true, env };
}

export async function cacheSuite(b: Bench): Promise<void> {
  b.report.section(SECTION, "substituting a closure from a local HTTP cache (nginx) vs building it; the cache's archive format vs tar | zstd", "ms");
  const w = workload(b);
  const keys = join(b.tmp, "keys");
  mkdirSync(keys, { recursive: true });
  const pub = run({ argv: [...b.kiln, "cache", "keygen", "bench-1", "--dir", keys], capture: true }).stdout.trim();
  const nginx = await startNginx(join(b.tmp, "nginx"), join(b.tmp, "www"));
  try {
    const url = `${nginx.url}/cache`;
    b.log(`cache: pushing ${w.target} from ${w.store} to ${url}`);
    run({ argv: [...b.kiln, "--store", w.store, "--reporter", "quiet", "copy", w.target, "--to", url, "--secret-key", join(keys, "bench-1.sec")], cwd: w.cwd });
    const closure = closureOf(w.store, w.target, w.cwd, b);
    substituteRows(b, w, url, pub, closure);
    archiveRows(b, w, closure);
  } finally {
    await nginx.stop();
  }
}

interface Closure {
  names: StorePathName[];
  bytes: number;
  /** recorded durations of the last builds of every derivation in the target's graph, ms, summed */
  recordedBuildMs: number;
  recordedBuilds: number;
}

function closureOf(root: string, target: string, cwd: string, b: Bench): Closure {
  const info = JSON.parse(run({ argv: [...b.kiln, "--store", root, "path-info", "-r", "--json", target], cwd, capture: true }).stdout) as Array<{ path: string; narSize: number }>;
  const graph = JSON.parse(run({ argv: [...b.kiln, "--store", root, "eval", "--json", target], cwd, capture: true }).stdout) as { derivations: Record<string, unknown> };
  const store = LocalStore.open(root);
  try {
    let recordedBuildMs = 0;
    let recordedBuilds = 0;
    for (const drv of Object.keys(graph.derivations)) {
      const build = store.lastBuild(drv);
      if (build?.status === "built" && build.ended_at) {
        recordedBuildMs += build.ended_at - build.started_at;
        recordedBuilds++;
      }
    }
    return { names: info.map((i) => i.path.split("/").pop() as StorePathName), bytes: info.reduce((s, i) => s + i.narSize, 0), recordedBuildMs, recordedBuilds };
  } finally {
    store.close();
  }
}

function substituteRows(b: Bench, w: Workload, url: string, pub: string, c: Closure): void {
  const runs = b.opts.quick ? 2 : 3;
  const fresh = join(b.tmp, "subst-store");
  const built = join(b.tmp, "build-store");
  const contenders: Contender[] = [{
    key: "substitute",
    cmd: { argv: [...b.kiln, "--store", fresh, "--reporter", "quiet", "realize", "--no-link", w.target, "--substituters", url, "--trusted-public-keys", pub], cwd: w.cwd, env: w.env },
    before: () => removeTree(fresh),
  }];
  if (w.buildAnchor) {
    contenders.push({ key: "build", cmd: { argv: [...b.kiln, "--store", built, "--reporter", "quiet", "realize", "--no-link", w.target], cwd: w.cwd, env: w.env }, before: () => removeTree(built) });
  }
  b.log(`cache: ${contenders.map((x) => x.key).join(", ")} of ${w.label} x ${runs}`);
  const res = measureRoundRobin(contenders, { runs, warmup: 0 });
  const s = summarize(res.get("substitute")!.ms);
  const mib = c.bytes / 2 ** 20;
  const note = `${c.names.length} paths, ${fmtNum(mib)} MiB unpacked (${fmtNum(mib / (s.median / 1000))} MiB/s): evaluation, plan, download, unpack and re-hash on import`;
  if (w.buildAnchor) {
    const bt = summarize(res.get("build")!.ms);
    b.report.add({ section: SECTION, case: `${w.label}: substitute`, tool: "kiln", unit: "ms", time: s, ratios: [{ anchor: "building it", value: s.median / bt.median }], note });
    b.report.add({ section: SECTION, case: `${w.label}: build`, tool: "kiln (anchor)", unit: "ms", time: bt, note: "the same realize without the cache, into an empty store" });
  } else {
    // not a ratio: ratios are against anchors measured in the same run, and a rebuild takes an hour
    const recorded = c.recordedBuildMs > 0 ? `; for comparison, not measured here: the last builds of the ${c.recordedBuilds} derivations of its graph recorded in ${w.store}, ${fmtNum(c.recordedBuildMs / 1000)} s summed (one after another; -j2 overlaps some): substituting took 1/${Math.round(c.recordedBuildMs / s.median)} of that` : "";
    b.report.add({ section: SECTION, case: `${w.label}: substitute`, tool: "kiln", unit: "ms", time: s, ratios: [], note: `${note}${recorded}` });
  }
}

function archiveRows(b: Bench, w: Workload, c: Closure): void {
  const runs = b.opts.quick ? 2 : 3;
  const storeDir = join(w.store, "store");
  const tool = join(b.repo, "bench", "lib", "archive-tool.mjs");
  const kilnOut = join(b.tmp, "arch-kiln");
  const tarOut = join(b.tmp, "arch-tar");
  const kilnDest = join(b.tmp, "restore-kiln");
  const tarDest = join(b.tmp, "restore-tar");
  const quoted = c.names.map((n) => `'${n}'`).join(" ");
  const tarPack = `mkdir -p ${tarOut} && for p in ${quoted}; do tar -C ${storeDir} -cf - "$p" | zstd -3 -q -T1 -o ${tarOut}/"$p".tar.zst; done`;
  const tarUnpack = `mkdir -p ${tarDest} && for f in ${tarOut}/*.tar.zst; do zstd -dc -q "$f" | tar -x -C ${tarDest}; done`;
  const res = measureRoundRobin([
    { key: "kiln pack", cmd: { argv: ["node", tool, "pack", kilnOut, storeDir, ...c.names] }, before: () => removeTree(kilnOut) },
    { key: "tar pack", cmd: { argv: ["sh", "-c", tarPack] }, before: () => removeTree(tarOut) },
  ], { runs, warmup: 0 });
  const size = (dir: string) => readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
  const mib = c.bytes / 2 ** 20;
  const kp = summarize(res.get("kiln pack")!.ms);
  const tp = summarize(res.get("tar pack")!.ms);
  b.report.add({
    section: SECTION, case: `${w.label}: archive`, tool: "kiln", unit: "ms", time: kp, ratios: [{ anchor: "tar | zstd -3", value: kp.median / tp.median }],
    note: `${fmtNum(mib / (kp.median / 1000))} MiB/s; ${fmtNum(size(kilnOut) / 2 ** 20)} MiB of archives (tar | zstd: ${fmtNum(size(tarOut) / 2 ** 20)} MiB)`,
  });
  b.report.add({ section: SECTION, case: `${w.label}: archive`, tool: "tar | zstd -3", unit: "ms", time: tp, note: `${fmtNum(mib / (tp.median / 1000))} MiB/s` });
  const un = measureRoundRobin([
    { key: "kiln unpack", cmd: { argv: ["node", tool, "unpack", kilnOut, kilnDest] }, before: () => removeTree(kilnDest) },
    { key: "tar unpack", cmd: { argv: ["sh", "-c", tarUnpack] }, before: () => removeTree(tarDest) },
  ], { runs, warmup: 0 });
  const ku = summarize(un.get("kiln unpack")!.ms);
  const tu = summarize(un.get("tar unpack")!.ms);
  b.report.add({ section: SECTION, case: `${w.label}: restore`, tool: "kiln", unit: "ms", time: ku, ratios: [{ anchor: "zstd -d | tar -x", value: ku.median / tu.median }], note: `${fmtNum(mib / (ku.median / 1000))} MiB/s (the checks of an untrusted archive included; the import's re-hash is not)` });
  b.report.add({ section: SECTION, case: `${w.label}: restore`, tool: "zstd -d | tar -x", unit: "ms", time: tu, note: `${fmtNum(mib / (tu.median / 1000))} MiB/s` });
  for (const d of [kilnOut, tarOut, kilnDest, tarDest]) removeTree(d);
}

// gc: the mark phase and deletion order on synthetic graphs (pure), then collectGarbage on a real
// temporary store: roots of every kind, roots that appear while gc runs, path locks, strays.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { KilnError } from "./errors.js";
import { collectGarbage, deletionOrder, graphFromEdges, loadGraph, mark, type GcEvent } from "./gc.js";
import { addPin, listRoots } from "./roots.js";
import { logicalPath, removeTree, type StorePathName } from "./paths.js";
import { tablesOf, LocalStore } from "./local-store.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..");

/** Synthetic graph: nodes named n0..n(k-1); edges as [referrer, reference]. */
function synth(k: number, edges: Array<[number, number]>, lastUsed: number[] = [], size: number[] = []) {
  const nodes = Array.from({ length: k }, (_, i) => ({ path: `n${i}`, size: size[i] ?? 1, lastUsed: lastUsed[i] ?? 0 }));
  return graphFromEdges(nodes, edges);
}
const set = (live: Uint8Array) => [...live.keys()].filter((i) => live[i]);

describe("mark (synthetic graphs)", () => {
  // 0 -> 1 -> 2, 0 -> 3, 4 -> 2, 5 (alone), 6 -> 6 (self reference), 7 -> 8 -> 7 (a cycle)
  const g = synth(9, [[0, 1], [1, 2], [0, 3], [4, 2], [6, 6], [7, 8], [8, 7]]);

  test("marks exactly the closure of the roots", () => {
    assert.deepEqual(set(mark(g, [0])), [0, 1, 2, 3]);
    assert.deepEqual(set(mark(g, [4])), [2, 4]);
    assert.deepEqual(set(mark(g, [1, 4])), [1, 2, 4]);
    assert.deepEqual(set(mark(g, [])), []);
    assert.deepEqual(set(mark(g, [6])), [6], "a self reference terminates");
    assert.deepEqual(set(mark(g, [7])), [7, 8], "so does a cycle");
  });

  test("extra edges (build-time inputs with --keep-build-deps) are followed too", () => {
    const extra = new Map([[3, [5]]]);
    assert.deepEqual(set(mark(g, [0], (i) => extra.get(i))), [0, 1, 2, 3, 5]);
  });

  test("a wide synthetic graph: every leaf under a live group survives, the rest do not", () => {
    // 1000 leaves, 10 groups of 100, roots: groups 0 and 7
    const edges: Array<[number, number]> = [];
    for (let l = 0; l < 1000; l++) edges.push([1000 + Math.floor(l / 100), l]);
    const big = synth(1010, edges);
    const live = mark(big, [1000, 1007]);
    for (let l = 0; l < 1000; l++) assert.equal(live[l], [0, 7].includes(Math.floor(l / 100)) ? 1 : 0, `leaf ${l}`);
  });
});

describe("deletionOrder", () => {
  test("referrers come before what they reference, least recently used first", () => {
    // 0 -> 1 -> 2; 3 alone. Last use: 0 at 50, 1 at 10, 2 at 5, 3 at 20.
    const g = synth(4, [[0, 1], [1, 2]], [50, 10, 5, 20]);
    const order = deletionOrder(g, new Uint8Array(4));
    // 1 and 2 are effectively used at 50 (their referrer 0 was); 3 (20) goes first
    assert.deepEqual(order, [3, 0, 1, 2]);
  });

  test("a byte limit takes an LRU prefix that never breaks a reference", () => {
    const g = synth(4, [[0, 1], [1, 2]], [50, 10, 5, 20], [100, 100, 100, 100]);
    assert.deepEqual(deletionOrder(g, new Uint8Array(4), { limitBytes: 100 }), [3]);
    assert.deepEqual(deletionOrder(g, new Uint8Array(4), { limitBytes: 101 }), [3, 0]);
    assert.deepEqual(deletionOrder(g, new Uint8Array(4), { limitBytes: 0 }), []);
  });

  test("unusedSince keeps recently used paths and what they reference", () => {
    const g = synth(4, [[0, 1], [1, 2]], [50, 10, 5, 20]);
    assert.deepEqual(deletionOrder(g, new Uint8Array(4), { unusedSince: 30 }), [3]);
  });

  test("live paths are never in the order, and a dead referrer of a live path is", () => {
    const g = synth(3, [[0, 1], [2, 1]]);
    const live = mark(g, [0]);
    assert.deepEqual(deletionOrder(g, live), [2]);
  });
});

// ---- a real store ------------------------------------------------------------------------------

const temps: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  temps.forEach(removeTree);
});
function tempStore(): LocalStore {
  const r = mkdtempSync(join(tmpdir(), "kiln-gc-"));
  temps.push(r);
  return LocalStore.open(r);
}

/** Add a directory output whose file mentions the logical paths of `refs` (so they are references). */
function add(store: LocalStore, name: string, refs: StorePathName[] = [], bytes = 100): StorePathName {
  const dir = join(store.scratchDir("t"), name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "f"), refs.map((r) => `${logicalPath(r)}\n`).join("") + "x".repeat(bytes) + name);
  return store.addOutput({ scratch: dir, name, candidates: refs }, (id) => store.insertRealisation(`r-${name}`, "out", id)).path;
}

/** Forget this process's temp roots, as if the kiln that made the paths had exited. */
function exitProducer(store: LocalStore): void {
  tablesOf(store).db.exec("DELETE FROM temp_roots");
}

function validSet(store: LocalStore): string[] {
  return store.allPaths().map((p) => p.path).sort();
}
function onDisk(store: LocalStore): string[] {
  return readdirSync(store.storeDir).sort();
}
const now = () => Date.now();

/** A child process holding a lock on this store (store/test-helpers/hold-lock.ts). */
async function holdLock(root: string, key: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", join(HERE, "test-helpers", "hold-lock.ts"), root, key], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  await new Promise<void>((res, rej) => {
    child.stdout!.on("data", (d: Buffer) => (d.toString().includes("locked") ? res() : rej(new Error(d.toString()))));
    child.on("exit", (c) => rej(new Error(`hold-lock exited with ${c}`)));
  });
  return child;
}

describe("collectGarbage on a store", () => {
  test("removes kiln-hash's tree caches unused for a month, and unfinished writes a day old; keeps the rest", async () => {
    const s = tempStore();
    const dir = join(s.root, "tree-digests");
    mkdirSync(dir);
    const day = 24 * 3600_000;
    const files = { recent: 29 * day, old: 31 * day, "fresh.bin.1.tmp": 3600_000, "left.bin.2.tmp": 2 * day };
    for (const [name, age] of Object.entries(files)) {
      writeFileSync(join(dir, name), "x");
      utimesSync(join(dir, name), new Date(now() - age), new Date(now() - age));
    }
    assert.equal((await collectGarbage(s, { dryRun: true, now })).treeCaches, 2);
    assert.equal(readdirSync(dir).length, 4, "a dry run removes nothing");
    assert.equal((await collectGarbage(s, { now })).treeCaches, 2);
    assert.deepEqual(readdirSync(dir).sort(), ["fresh.bin.1.tmp", "recent"]);
  });

  test("deletes exactly the unreachable paths; pins, links and live temp roots keep their closures", async () => {
    const s = tempStore();
    const lib = add(s, "lib");
    const app = add(s, "app", [lib]);
    const tool = add(s, "tool");
    const linked = add(s, "linked", [tool]);
    const tempOnly = add(s, "temp-only");
    const dead1 = add(s, "dead1", [lib]); // references a live path: dead itself
    const dead2 = add(s, "dead2");
    const dead3 = add(s, "dead3", [dead2]);
    const staleTemp = add(s, "stale-temp");
    exitProducer(s);

    addPin(s, "app", app, now());
    const link = join(s.root, "result");
    symlinkSync(s.hostPath(linked), link);
    tablesOf(s).db.prepare("INSERT INTO roots (name, kind, path, created_at) VALUES (?, 'link', ?, ?)").run(`link:${link}`, linked, now());
    s.addTempRoots([tempOnly]);
    // a temp root of a process that is gone (same pid, another start time): ignored
    tablesOf(s).db.prepare("INSERT INTO temp_roots (pid, pid_start, path) VALUES (?, 'not-the-start', ?)").run(process.pid, staleTemp);

    const dry = await collectGarbage(s, { dryRun: true, now });
    assert.deepEqual(dry.deleted.map((d) => d.path).sort(), [dead1, dead2, dead3, staleTemp].sort());
    assert.equal(validSet(s).length, 9, "a dry run deletes nothing");

    const r = await collectGarbage(s, { now });
    assert.deepEqual(r.deleted.map((d) => d.path).sort(), [dead1, dead2, dead3, staleTemp].sort());
    // a referrer goes before what it references
    assert.ok(r.deleted.findIndex((d) => d.path === dead3) < r.deleted.findIndex((d) => d.path === dead2));
    const live = [lib, app, tool, linked, tempOnly].sort();
    assert.deepEqual(validSet(s), live);
    assert.deepEqual(onDisk(s), live);
    assert.equal(s.realisation("r-dead1", "out"), undefined, "realisations of deleted paths go with them");
    assert.equal(s.realisation("r-app", "out"), app);
    const staleRows = tablesOf(s).db.prepare<[], { n: number }>("SELECT count(*) AS n FROM temp_roots WHERE pid_start = 'not-the-start'").get()!.n;
    assert.equal(staleRows, 0, "stale temp roots are dropped");
  });

  test("a result link that was removed (or points out of the store) is no root", async () => {
    const s = tempStore();
    const p = add(s, "p");
    const q = add(s, "q");
    exitProducer(s);
    const l1 = join(s.root, "result");
    const l2 = join(s.root, "result-2");
    symlinkSync(s.hostPath(p), l1);
    symlinkSync("/etc", l2);
    const ins = tablesOf(s).db.prepare("INSERT INTO roots (name, kind, path, created_at) VALUES (?, 'link', ?, ?)");
    ins.run(`link:${l1}`, p, now());
    ins.run(`link:${l2}`, q, now());
    assert.deepEqual(listRoots(s).roots.map((r) => r.path), [p]);
    rmSync(l1);
    const r = await collectGarbage(s, { now });
    assert.deepEqual(r.deleted.map((d) => d.path).sort(), [p, q].sort());
    assert.equal(r.staleRoots.length, 2);
    assert.deepEqual(tablesOf(s).db.prepare("SELECT name FROM roots").all(), [], "their rows are dropped");
  });

  test("what this process registered stays rooted until it ends", async () => {
    const s = tempStore();
    const p = add(s, "fresh");
    await collectGarbage(s, { now });
    assert.deepEqual(validSet(s), [p], "addOutput temp-roots its result");
    s.close();
    const again = LocalStore.open(s.root); // close() ended this 'process's' roots
    const r = await collectGarbage(again, { now });
    assert.deepEqual(r.deleted.map((d) => d.path), [p]);
    again.close();
  });

  test("a root that appears after the mark (a realize starting to use a path) keeps its closure", async () => {
    const s = tempStore();
    const dep = add(s, "dep");
    const user = add(s, "user", [dep]);
    const other = add(s, "other");
    exitProducer(s);
    const r = await collectGarbage(s, {
      now,
      batchSize: 1,
      onEvent: (e: GcEvent) => {
        // between the mark (which saw no roots) and the first deletion: root `user`, as
        // Realizer.protect does, and see that it is still valid
        if (e.type === "marked") assert.ok(s.addTempRoots([user]).has(user));
      },
    });
    assert.deepEqual(r.deleted.map((d) => d.path), [other]);
    assert.equal(r.keptDuringSweep, 2);
    assert.deepEqual(validSet(s), [dep, user].sort());
  });

  test("a path whose lock another live process holds (registering it right now) is kept, with its closure", async () => {
    const s = tempStore();
    const dep = add(s, "dep2");
    const busy = add(s, "busy", [dep]);
    const other = add(s, "other2");
    exitProducer(s);
    const holder = await holdLock(s.root, `path:${busy.slice(0, 32)}`);
    const r = await collectGarbage(s, { now });
    holder.kill("SIGKILL");
    assert.deepEqual(r.deleted.map((d) => d.path), [other]);
    assert.deepEqual(validSet(s), [busy, dep].sort());
  });

  test("two gcs do not run at once: a live holder of the gc lock makes the second fail with STORE_LOCKED", async () => {
    const s = tempStore();
    add(s, "x");
    exitProducer(s);
    const holder = await holdLock(s.root, "gc");
    await assert.rejects(collectGarbage(s, { now }), (e: unknown) => e instanceof KilnError && e.code === "STORE_LOCKED");
    holder.kill("SIGKILL");
    await new Promise((r) => holder.on("exit", r));
    const r = await collectGarbage(s, { now }); // a dead holder's lock is ignored
    assert.equal(r.deleted.length, 1);
  });

  test("strays (directories without a row) are removed; --keep-build-deps keeps a live path's build inputs", async () => {
    const s = tempStore();
    const input = add(s, "input");
    const out = add(s, "out");
    exitProducer(s);
    addPin(s, "out", out, now());
    const id = s.startBuild({ drvHash: "d1", resolvedHash: "r1", name: "out", inputs: { "d0!out": input }, logFile: "/dev/null", startedAt: 1 });
    s.completeBuild(id, { out }, 2);
    const stray = "0".repeat(32) + "-stray";
    mkdirSync(join(s.storeDir, stray));

    const kept = await collectGarbage(s, { now, keepBuildDeps: true });
    assert.deepEqual(kept.deleted, []);
    assert.deepEqual(kept.strays, [stray]);
    assert.ok(!existsSync(join(s.storeDir, stray)));
    const plain = await collectGarbage(s, { now });
    assert.deepEqual(plain.deleted.map((d) => d.path), [input]);
  });

  test("--max-size deletes least recently used first", async () => {
    const s = tempStore();
    const old = add(s, "old", [], 1000);
    const mid = add(s, "mid", [], 1000);
    const recent = add(s, "recent", [], 1000);
    exitProducer(s);
    s.touch([old], 1000);
    s.touch([mid], 2000);
    s.touch([recent], 3000);
    const total = loadGraph(s).size.reduce((a, b) => a + b, 0);
    const r = await collectGarbage(s, { now, maxSize: total - 1 });
    assert.deepEqual(r.deleted.map((d) => d.path), [old]);
    const r2 = await collectGarbage(s, { now, maxFreed: 1 });
    assert.deepEqual(r2.deleted.map((d) => d.path), [mid]);
    assert.deepEqual(validSet(s), [recent]);
  });
});

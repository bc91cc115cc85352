import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { hashTree, UnsupportedEntryError } from "./archive.js";
import { hashFiles, type FileJob } from "./hash-files.js";

const root = mkdtempSync(join(tmpdir(), "kiln-hashfiles-"));
after(() => rmSync(root, { recursive: true, force: true }));
const buf = Buffer.allocUnsafe(1 << 20);

// enough files that hashFiles shares them with workers: 2,400 small files in 24 directories,
// every one different, some executable, and a few larger than the 1 MiB read buffer
const tree = join(root, "tree");
const jobs: FileJob[] = [];
before(() => {
  for (let d = 0; d < 24; d++) {
    mkdirSync(join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) {
      const path = join(tree, `d${d}`, `f${f}`);
      const big = f === 0 && d % 8 === 0;
      const body = big ? Buffer.alloc((1 << 20) + 4096 * d + 7, `big ${d}`) : Buffer.from(`file ${d}/${f}\n`.repeat(1 + ((d * f) % 50)));
      writeFileSync(path, body);
      const exec = f % 7 === 0;
      if (exec) chmodSync(path, 0o755);
      jobs.push({ path, size: body.length, exec });
    }
  }
});

describe("hashFiles", () => {
  test("workers give the same digests, in the same order, as the calling thread alone", () => {
    const serial = hashFiles(jobs, buf, { workers: 0 });
    const stats = { workerFiles: 0 };
    // the calling thread only waits: every digest below comes from a worker
    const byWorkers = hashFiles(jobs, buf, { workers: 2, callerHashes: false, stats });
    assert.equal(stats.workerFiles, jobs.length);
    assert.deepEqual(byWorkers.map((d) => d.toString("hex")), serial.map((d) => d.toString("hex")));
    // and the digests are of the files: two different files never share one
    assert.equal(new Set(serial.map((d) => d.toString("hex"))).size, jobs.length);
    const shared = hashFiles(jobs, buf, { workers: 1 });
    assert.deepEqual(shared.map((d) => d.toString("hex")), serial.map((d) => d.toString("hex")));
  });

  test("the compiled module's workers (what the shipped CLI runs) give the same digests", () => {
    // the worker runs hashFileJob from its source text: check that text as the build emits it
    const compiled = fileURLToPath(new URL("../dist/store/hash-files.js", import.meta.url));
    const script = `
      const { hashFiles } = await import(${JSON.stringify(compiled)});
      const jobs = JSON.parse((await import("node:fs")).readFileSync(0, "utf8"));
      const stats = { workerFiles: 0 };
      const d = hashFiles(jobs, Buffer.allocUnsafe(1 << 20), { workers: 1, callerHashes: false, stats });
      process.stdout.write(JSON.stringify({ workerFiles: stats.workerFiles, digests: d.map((x) => x.toString("hex")) }));`;
    const r = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { input: JSON.stringify(jobs), encoding: "utf8" }));
    assert.equal(r.workerFiles, jobs.length);
    assert.deepEqual(r.digests, hashFiles(jobs, buf, { workers: 0 }).map((d) => d.toString("hex")));
  });

  test("the exec bit and the size are part of a file's digest on every thread", () => {
    const flipped = jobs.map((j, i) => (i === 5 ? { ...j, exec: !j.exec } : j));
    const a = hashFiles(jobs, buf, { workers: 1, callerHashes: false });
    const b = hashFiles(flipped, buf, { workers: 1, callerHashes: false });
    assert.notEqual(a[5]!.toString("hex"), b[5]!.toString("hex"));
    assert.equal(a[6]!.toString("hex"), b[6]!.toString("hex"));
  });

  test("a file a worker cannot hash fails with the same error as on the calling thread", () => {
    const missing = [...jobs];
    missing[1234] = { path: join(tree, "no-such-file"), size: 3, exec: false };
    assert.throws(() => hashFiles(missing, buf, { workers: 1, callerHashes: false }), (e: NodeJS.ErrnoException) => e.code === "ENOENT" && e.message.includes("no-such-file"));
    const changed = [...jobs];
    changed[2000] = { ...jobs[2000]!, size: jobs[2000]!.size + 1 };
    assert.throws(() => hashFiles(changed, buf, { workers: 1, callerHashes: false }), new RegExp(`file changed while hashing: ${jobs[2000]!.path}$`));
    const bigChanged = [...jobs];
    bigChanged[800] = { ...jobs[800]!, size: jobs[800]!.size - 1 };
    assert.ok(jobs[800]!.size > 1 << 20);
    assert.throws(() => hashFiles(bigChanged, buf, { workers: 1, callerHashes: false }), /file changed while hashing/);
  });

  test("hashTree of a tree large enough for workers equals its digest on one thread", () => {
    // native: false, this module's walk (the tree is large enough for kiln-hash, store/tree-hash.test.ts)
    const one = hashTree(tree, { workers: 0, native: false });
    const many = hashTree(tree, { workers: 2, native: false });
    assert.deepEqual(many, one);
    assert.equal(one.files, jobs.length);
  });

  test("with several files that cannot be hashed, the first of them in order is the error, on any thread", () => {
    const bad = [...jobs];
    bad[100] = { path: join(tree, "gone-first"), size: 1, exec: false };
    bad[2200] = { ...jobs[2200]!, size: jobs[2200]!.size + 3 };
    bad[2300] = { path: join(tree, "gone-last"), size: 1, exec: false };
    for (const opts of [{ workers: 0 }, { workers: 1 }, { workers: 2, callerHashes: false }, { workers: 1 }]) {
      assert.throws(() => hashFiles(bad, buf, opts), (e: NodeJS.ErrnoException) => e.code === "ENOENT" && e.message.includes("gone-first"), JSON.stringify(opts));
    }
  });

  test("a walk that fails after workers started leaves no thread behind", async () => {
    const threads = () => readdirSync("/proc/self/task").length;
    const dir = join(root, "with-fifo");
    mkdirSync(dir);
    for (let f = 0; f < 2500; f++) writeFileSync(join(dir, `a${String(f).padStart(4, "0")}`), `${f}\n`);
    execFileSync("mkfifo", [join(dir, "z-fifo")]); // sorts after the files: met when workers run
    await sleep(300);
    const before = threads();
    for (let i = 0; i < 3; i++) assert.throws(() => hashTree(dir, { workers: 2 }), UnsupportedEntryError);
    // terminated workers take a moment to exit
    for (let t = 0; t < 50 && threads() > before; t++) await sleep(100);
    assert.equal(threads(), before);
  });
});

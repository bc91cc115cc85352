import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { hashTree } from "./archive.js";
import { hashPart } from "./digest.js";
import { KilnError } from "./errors.js";
import { MIGRATIONS } from "./migrations.js";
import { makeStorePathName, parseStorePathName, removeTree, validateName, type StorePathName } from "./paths.js";
import { tablesOf, LocalStore } from "./local-store.js";
import { overwriteTablePage } from "./test-helpers/damage.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..");
const roots: string[] = [];
after(() => roots.forEach(removeTree));
function tempStore(): LocalStore {
  const r = mkdtempSync(join(tmpdir(), "kiln-store-"));
  roots.push(r);
  return LocalStore.open(r);
}

/** Write a scratch output (a directory of files) and return its host path. */
function scratchOutput(store: LocalStore, files: Record<string, string>, name = "out"): string {
  const out = join(store.scratchDir("test"), name);
  mkdirSync(out, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(out, rel)), { recursive: true });
    writeFileSync(join(out, rel), content);
  }
  return out;
}

describe("LocalStore.open and migrations", () => {
  test("creates the layout and migrates to the latest schema version", () => {
    const s = tempStore();
    for (const d of ["store", "tmp", "logs"]) assert.ok(statSync(join(s.root, d)).isDirectory(), d);
    assert.equal(tablesOf(s).db.pragma("user_version", { simple: true }), MIGRATIONS.length);
    assert.equal(tablesOf(s).db.pragma("journal_mode", { simple: true }), "wal");
    const tables = tablesOf(s).db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
    for (const t of ["builds", "derivations", "fixed_content", "locks", "realisations", "refs", "resolutions", "roots", "valid_paths"]) {
      assert.ok(tables.includes(t), `table ${t}`);
    }
    s.close();
  });

  test("migration 8 forgets the file digests cached before racy files were left out; later ones stay", () => {
    const s = tempStore();
    const db = tablesOf(s).db;
    db.prepare("INSERT INTO file_digests (key, digest) VALUES ('old', 'x')").run();
    db.pragma("user_version = 7");
    s.close();
    const again = LocalStore.open(s.root);
    const rows = () => tablesOf(again).db.prepare<[], { key: string }>("SELECT key FROM file_digests").all().map((r) => r.key);
    assert.deepEqual(rows(), []);
    tablesOf(again).db.prepare("INSERT INTO file_digests (key, digest) VALUES ('new', 'y')").run();
    again.close();
    const third = LocalStore.open(s.root);
    assert.deepEqual(tablesOf(third).db.prepare<[], { key: string }>("SELECT key FROM file_digests").all().map((r) => r.key), ["new"]);
    third.close();
  });

  test("reopening keeps the data and does not re-run migrations", () => {
    const s = tempStore();
    s.recordDerivation("h".repeat(64), "x", "{}");
    s.close();
    const again = LocalStore.open(s.root);
    assert.equal(again.derivation("h".repeat(64))?.name, "x");
    assert.equal(tablesOf(again).db.pragma("user_version", { simple: true }), MIGRATIONS.length);
    again.close();
  });

  test("a database emptied or deleted beside a store directory that holds paths is refused; a new store is not", () => {
    const s = tempStore();
    const { path } = s.addOutput({ scratch: scratchOutput(s, { f: "x" }), name: "kept", candidates: [] }, () => {});
    s.close();
    for (const lose of [() => writeFileSync(join(s.root, "db.sqlite"), ""), () => removeTree(join(s.root, "db.sqlite"))]) {
      lose();
      assert.throws(() => LocalStore.open(s.root), (e: unknown) =>
        e instanceof KilnError && e.code === "STORE_CORRUPT" && /missing or empty, but .* holds 1 store path/.test(e.message) && /kiln verify --repair/.test(e.hint ?? ""));
      assert.ok(existsSync(s.hostPath(path)));
    }
    assert.ok(!existsSync(join(s.root, "db.sqlite")), "the refusal made no database");
    // an empty store directory: a new store, created as usual
    removeTree(s.hostPath(path));
    LocalStore.open(s.root).close();
  });

  test("a backup is written when the process wrote and the roots changed, or the backup is old", () => {
    const s = tempStore();
    const backup = join(s.root, "db.backup.sqlite");
    assert.equal(s.backupIfDue(Date.now()), false, "nothing written: no backup");
    s.recordDerivation("h".repeat(64), "x", "{}");
    assert.equal(s.backupIfDue(Date.now()), true, "the first one");
    assert.equal(new Database(backup, { readonly: true }).prepare("SELECT name FROM derivations").pluck().get(), "x");
    s.recordDerivation("g".repeat(64), "y", "{}");
    assert.equal(s.backupIfDue(Date.now()), false, "the roots did not change and the backup is fresh");
    assert.equal(s.backupIfDue(Date.now() + 11 * 60_000), true, "older than ten minutes");
    s.close();
    const again = LocalStore.open(s.root);
    const { path } = again.addOutput({ scratch: scratchOutput(again, { f: "y" }), name: "pinned", candidates: [] }, () => {});
    tablesOf(again).roots.put("pin:p", "pin", path, 1);
    assert.equal(again.backupIfDue(Date.now()), true, "a new pin");
    again.close();
  });

  test("a damaged database never replaces a good backup", () => {
    const s = tempStore();
    s.addOutput({ scratch: scratchOutput(s, { f: "z" }), name: "one", candidates: [] }, () => {});
    s.backup();
    s.close();
    const good = readFileSync(join(s.root, "db.backup.sqlite"));
    overwriteTablePage(s.root, "valid_paths");
    const damaged = LocalStore.open(s.root);
    assert.throws(() => damaged.backup());
    damaged.close();
    assert.deepEqual(readFileSync(join(s.root, "db.backup.sqlite")), good);
    assert.deepEqual(readdirSync(s.root).filter((e) => e.includes(".tmp")), [], "no copy left behind");
  });

  test("a database from a newer kiln is refused with STORE_CORRUPT", () => {
    const s = tempStore();
    tablesOf(s).db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    s.close();
    assert.throws(() => LocalStore.open(s.root), (e: unknown) => e instanceof KilnError && e.code === "STORE_CORRUPT" && /newer than this kiln/.test(e.message));
  });

  test("an old database is migrated from its version (version 0 = empty file)", () => {
    const r = mkdtempSync(join(tmpdir(), "kiln-store-"));
    roots.push(r);
    new Database(join(r, "db.sqlite")).close();
    const s = LocalStore.open(r);
    assert.equal(tablesOf(s).db.pragma("user_version", { simple: true }), MIGRATIONS.length);
    s.close();
  });
});

describe("LocalStore.open from several processes at once", () => {
  test("processes opening one fresh store at the same instant all succeed (WAL switch and migrations race)", async () => {
    // each process loads everything, says it is ready and waits; once all four are ready, each is
    // told one shared instant (a little ahead), busy-waits until it and opens the store: the first
    // one switches the fresh file to WAL and migrates it while the others are opening it too
    const script = `import { LocalStore } from ${JSON.stringify(join(HERE, "local-store.ts"))};
      process.stdout.write("ready\\n");
      let input = "";
      for await (const d of process.stdin) { input += d; if (input.includes("\\n")) break; }
      const at = Number(input.trim()); while (Date.now() < at) {}
      const started = Date.now();
      LocalStore.open(process.argv[1]).close();
      process.stdout.write("opened at " + started + "\\n");`;
    const failures: string[] = [];
    for (let round = 0; round < 6; round++) {
      const r = mkdtempSync(join(tmpdir(), "kiln-store-"));
      roots.push(r);
      const children = Array.from({ length: 4 }, () => spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, r], { cwd: REPO, stdio: ["pipe", "pipe", "pipe"] }));
      const outs = children.map(() => "");
      const ready = children.map((child, i) => new Promise<void>((resolve) => {
        child.stdout.on("data", (d: Buffer) => {
          outs[i] += d.toString();
          if (outs[i]!.includes("ready\n")) resolve();
        });
        child.on("close", () => resolve());
      }));
      const runs = children.map((child) => new Promise<void>((resolve) => {
        let err = "";
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.on("close", (code) => {
          if (code !== 0) failures.push(`round ${round}: exit ${code}: ${err.split("\n").find((l) => /Error/.test(l)) ?? err}`);
          resolve();
        });
      }));
      await Promise.all(ready);
      const at = Date.now() + 100;
      for (const child of children) child.stdin.end(`${at}\n`);
      await Promise.all(runs);
      // they did start together: each began its open within a moment of the shared instant
      const starts = outs.map((o) => Number(/opened at (\d+)/.exec(o)?.[1]));
      assert.ok(starts.every((t) => t >= at && t - at < 250), `round ${round}: opens at ${starts.map((t) => t - at).join(", ")} ms after the shared instant`);
      const s = LocalStore.open(r);
      assert.equal(tablesOf(s).db.pragma("journal_mode", { simple: true }), "wal");
      assert.equal(tablesOf(s).db.pragma("user_version", { simple: true }), MIGRATIONS.length);
      s.close();
    }
    assert.deepEqual(failures, []);
  });
});

describe("store path names", () => {
  test("validateName accepts Nix-like names and rejects the rest", () => {
    for (const ok of ["hello", "hello-2.12.1", "a+b_c.d?e=f", "x"]) assert.equal(validateName(ok), undefined, ok);
    for (const bad of ["", ".hidden", "has space", "slash/name", "ünïcode", "x".repeat(181)]) assert.ok(validateName(bad), JSON.stringify(bad));
  });

  test("parseStorePathName splits hash and name, also from logical paths", () => {
    const h = hashPart("p");
    assert.deepEqual(parseStorePathName(`${h}-hello`), { hash: h, name: "hello" });
    assert.deepEqual(parseStorePathName(`/kiln/store/${h}-hello/bin/hello`), { hash: h, name: "hello" });
    assert.equal(parseStorePathName("tooshort-hello"), undefined);
    assert.equal(parseStorePathName(`${"e".repeat(32)}-hello`), undefined, "e is not in the alphabet");
  });
});

describe("LocalStore.addOutput", () => {
  test("is content-addressed: the same content from two scratch dirs is one path; the second is not fresh", () => {
    const s = tempStore();
    const files = { "bin/tool": "#!/bin/sh\necho tool\n", "share/doc": "docs\n" };
    const ids: number[] = [];
    const a = s.addOutput({ scratch: scratchOutput(s, files), name: "tool", candidates: [] }, (id, p) => {
      ids.push(id);
      s.insertRealisation("r1".padEnd(64, "0"), "out", id);
      assert.equal(p.slice(33), "tool");
    });
    const scratch2 = scratchOutput(s, files);
    const b = s.addOutput({ scratch: scratch2, name: "tool", candidates: [] }, (id) => {
      ids.push(id);
      s.insertRealisation("r2".padEnd(64, "0"), "out", id);
    });
    assert.equal(a.fresh, true);
    assert.equal(b.fresh, false);
    assert.equal(a.path, b.path);
    assert.equal(ids[0], ids[1]);
    assert.equal(existsSync(scratch2), false, "the duplicate scratch copy is dropped");
    assert.equal(s.realisation("r1".padEnd(64, "0"), "out"), a.path);
    assert.equal(s.realisation("r2".padEnd(64, "0"), "out"), a.path);
    assert.equal(a.path, makeStorePathName(hashPart(`kiln-ca:${a.info.narDigest}:tool`), "tool"));
    assert.equal(readFileSync(join(s.hostPath(a.path), "share/doc"), "utf8"), "docs\n");
    // different content or name -> a different path
    const c = s.addOutput({ scratch: scratchOutput(s, { ...files, "share/doc": "other\n" }), name: "tool", candidates: [] }, () => {});
    const d = s.addOutput({ scratch: scratchOutput(s, files), name: "tool2", candidates: [] }, () => {});
    assert.notEqual(c.path, a.path);
    assert.notEqual(d.path, a.path);
    assert.equal(s.allPaths().length, 3);
  });

  test("registers path, references and realisation in one transaction: a failing register leaves nothing valid", () => {
    const s = tempStore();
    const dep = s.addOutput({ scratch: scratchOutput(s, { f: "dep" }), name: "dep", candidates: [] }, () => {});
    const r = "9".repeat(64);
    let path: StorePathName | undefined;
    assert.throws(() =>
      s.addOutput({ scratch: scratchOutput(s, { f: `uses /kiln/store/${dep.path}` }), name: "user", candidates: [dep.path] }, (id, p) => {
        path = p;
        s.insertRealisation(r, "out", id);
        throw new Error("crash inside the registration");
      }),
    /crash inside the registration/);
    assert.ok(path);
    assert.equal(s.isValid(path), false);
    assert.equal(s.realisation(r, "out"), undefined);
    assert.equal(tablesOf(s).db.prepare<[], { n: number }>("SELECT count(*) AS n FROM refs").get()!.n, 0);
    // the same registration then succeeds, replacing the unregistered leftover on disk
    const ok = s.addOutput({ scratch: scratchOutput(s, { f: `uses /kiln/store/${dep.path}` }), name: "user", candidates: [dep.path] }, (id) => s.insertRealisation(r, "out", id));
    assert.equal(ok.path, path);
    assert.equal(ok.fresh, true);
    assert.equal(s.realisation(r, "out"), path);
    assert.deepEqual(ok.info.references, [dep.path]);
  });

  test("outputs are read-only and have mtime 1 s", () => {
    const s = tempStore();
    const out = scratchOutput(s, { "bin/x": "exe", "data/y": "data" });
    chmodSync(join(out, "bin/x"), 0o755);
    symlinkSync("bin/x", join(out, "link"));
    const { path } = s.addOutput({ scratch: out, name: "ro", candidates: [] }, () => {});
    const host = s.hostPath(path);
    const modes: Record<string, number> = {};
    const walk = (p: string, rel: string) => {
      const st = lstatSync(p);
      modes[rel] = st.mode & 0o7777;
      assert.equal(st.mtimeMs, 1000, `mtime of ${rel}`);
      if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e), rel ? `${rel}/${e}` : e);
    };
    walk(host, "");
    assert.equal(modes[""], 0o555);
    assert.equal(modes["bin"], 0o555);
    assert.equal(modes["bin/x"], 0o555);
    assert.equal(modes["data/y"], 0o444);
    assert.equal(readlinkSync(join(host, "link")), "bin/x");
  });

  test("self-references are normalised for the address and rewritten to the final path", () => {
    const s = tempStore();
    const mk = (selfHash: string) => {
      const out = scratchOutput(s, { self: `/kiln/store/${selfHash}-selfy\n`, plain: "x" });
      symlinkSync(`/kiln/store/${selfHash}-selfy/plain`, join(out, "link"));
      return s.addOutput({ scratch: out, name: "selfy", selfHash, candidates: [] }, () => {});
    };
    const a = mk(hashPart("scratch one"));
    const b = mk(hashPart("scratch two"));
    assert.equal(a.path, b.path, "two builds at different scratch paths give one content address");
    assert.equal(b.fresh, false);
    const host = s.hostPath(a.path);
    assert.equal(readFileSync(join(host, "self"), "utf8"), `/kiln/store/${a.path}\n`);
    assert.equal(readlinkSync(join(host, "link")), `/kiln/store/${a.path}/plain`);
    assert.deepEqual(a.info.references, [a.path], "a self-reference is a reference");
    // what `kiln verify` recomputes matches the registered digest
    assert.equal(hashTree(host, { selfHash: a.path.slice(0, 32) }).digest, a.info.narDigest);
  });

  test("references are found among the candidates and the closure is transitive", () => {
    const s = tempStore();
    const add = (name: string, content: string, candidates: StorePathName[]) =>
      s.addOutput({ scratch: scratchOutput(s, { f: content }), name, candidates }, () => {}).path;
    const a = add("a", "leaf", []);
    const b = add("b", `needs /kiln/store/${a}/f`, [a]);
    const unrelated = add("u", "alone", []);
    const c = add("c", `needs /kiln/store/${b}`, [a, b, unrelated]);
    assert.deepEqual(s.pathInfo(c)!.references, [b]);
    assert.deepEqual(s.pathInfo(b)!.references, [a]);
    assert.deepEqual([...s.closure([c])].sort(), [a, b, c].sort());
    assert.deepEqual([...s.closure([a])], [a]);
    assert.deepEqual([...s.closure([b, unrelated])].sort(), [a, b, unrelated].sort());
    assert.equal(s.closure([]).size, 0);
  });
});

describe("locks", () => {
  function holdLock(root: string, key: string): Promise<{ kill: () => Promise<void> }> {
    const child = spawn(process.execPath, ["--import", "tsx", join(HERE, "test-helpers", "hold-lock.ts"), root, key], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<void>((r) => child.on("exit", () => r()));
    return new Promise((resolve, reject) => {
      let out = "";
      let err = "";
      child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
      child.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("locked\n")) {
          resolve({
            kill: async () => {
              child.kill("SIGKILL");
              await exited;
            },
          });
        }
      });
      child.on("exit", (code) => reject(new Error(`lock holder exited early (${code}): ${out}${err}`)));
    });
  }

  test("a lock held by a live process blocks; after that process is SIGKILLed the lock is stale and can be taken", async () => {
    const s = tempStore();
    const holder = await holdLock(s.root, "build:abc");
    try {
      assert.equal(s.tryLock("build:abc"), false, "held by a live process");
      assert.equal(s.tryLock("build:other"), true, "other keys are independent");
    } finally {
      await holder.kill();
    }
    assert.equal(s.tryLock("build:abc"), true, "the dead holder's lock is stale");
    const row = tablesOf(s).db.prepare<[string], { pid: number }>("SELECT pid FROM locks WHERE key = ?").get("build:abc");
    assert.equal(row?.pid, process.pid);
  });

  test("a lock taken here is re-entrant for this process, blocks others until unlocked", async () => {
    const s = tempStore();
    assert.equal(s.tryLock("k"), true);
    assert.equal(s.tryLock("k"), true);
    // another process cannot take it while this one lives...
    await assert.rejects(holdLock(s.root, "k"), /lock holder exited early \(3\): busy/);
    // ...and can after unlock
    s.unlock("k");
    const holder = await holdLock(s.root, "k");
    assert.equal(s.tryLock("k"), false);
    await holder.kill();
  });

  test("cleanStaleScratch removes scratch dirs of dead processes only", async () => {
    const s = tempStore();
    const mine = s.scratchDir("mine");
    // a scratch dir named like one of a process that is gone (pid + wrong start time)
    const dead = join(s.tmpDir, `${process.pid}-1-old-build-xyz`);
    mkdirSync(join(dead, "store", "out"), { recursive: true });
    writeFileSync(join(dead, "store", "out", "f"), "half-built");
    chmodSync(join(dead, "store"), 0o555);
    assert.equal(s.cleanStaleScratch(), 1);
    assert.equal(existsSync(dead), false);
    assert.equal(existsSync(mine), true);
  });
});


describe("batched bookkeeping of a run", () => {
  test("recordHits sets the resolution of every hit and last_used of exactly their paths", () => {
    const s = tempStore();
    const add = (name: string) => s.addOutput({ scratch: scratchOutput(s, { f: name }), name, candidates: [] }, () => {}).path;
    const [a, b, c] = [add("a"), add("b"), add("c")];
    const before = s.pathInfo(c)!.lastUsed;
    s.recordHits([{ drv: "d1", resolved: "r1", paths: [a] }, { drv: "d2", resolved: "r2", paths: [a, b] }], before + 5000);
    assert.equal(s.resolution("d1"), "r1");
    assert.equal(s.resolution("d2"), "r2");
    assert.equal(s.pathInfo(a)!.lastUsed, before + 5000);
    assert.equal(s.pathInfo(b)!.lastUsed, before + 5000);
    assert.equal(s.pathInfo(c)!.lastUsed, before);
    // a later hit replaces the resolution
    s.recordHits([{ drv: "d1", resolved: "r9", paths: [] }], before + 6000);
    assert.equal(s.resolution("d1"), "r9");
    s.close();
  });

  test("addTempRoots roots every path given and answers which of them are valid", () => {
    const s = tempStore();
    const a = s.addOutput({ scratch: scratchOutput(s, { f: "a" }), name: "a", candidates: [] }, () => {}).path;
    const gone = makeStorePathName(hashPart("never built"), "gone");
    const valid = s.addTempRoots([a, gone, a]);
    assert.deepEqual([...valid], [a]);
    const rooted = tablesOf(s).db.prepare<[], { path: string }>("SELECT path FROM temp_roots ORDER BY path").all().map((r) => r.path);
    assert.deepEqual(rooted, [a, gone].sort());
    assert.equal(s.addTempRoots([]).size, 0);
    s.close();
  });

  test("recordDerivations encodes and stores only the derivations the store does not have", () => {
    const s = tempStore();
    const rows = Array.from({ length: 5 }, (_, i) => ({ hash: `${i}`.repeat(64), name: `d${i}` }));
    const encoded: string[] = [];
    const json = (r: { hash: string; name: string }) => (encoded.push(r.name), JSON.stringify({ n: r.name }));
    s.recordDerivations(rows.slice(0, 2), json);
    assert.deepEqual(encoded, ["d0", "d1"]);
    encoded.length = 0;
    s.recordDerivations(rows, json);
    assert.deepEqual(encoded, ["d2", "d3", "d4"]);
    for (const r of rows) assert.equal(s.derivation(r.hash)?.json, JSON.stringify({ n: r.name }));
    encoded.length = 0;
    s.recordDerivations(rows, json);
    assert.deepEqual(encoded, []);
    s.close();
  });

  test("derivationNames answers many hashes in one query, as derivationName does one by one; unknown ones are left out", () => {
    const s = tempStore();
    const rows = Array.from({ length: 4 }, (_, i) => ({ hash: `${i}`.repeat(64), name: `d${i}` }));
    s.recordDerivations(rows, (r) => JSON.stringify({ n: r.name }));
    const asked = [...rows.map((r) => r.hash), "f".repeat(64), rows[1]!.hash];
    const names = s.derivationNames(asked);
    assert.deepEqual([...names].sort(), rows.map((r) => [r.hash, r.name]));
    for (const h of asked) assert.equal(names.get(h), s.derivationName(h));
    assert.equal(s.derivationNames([]).size, 0);
    s.close();
  });

  test("realisations answers many (resolved hash, output) pairs at once, as realisation does one by one", () => {
    const s = tempStore();
    const add = (name: string) => {
      let id = 0;
      const path = s.addOutput({ scratch: scratchOutput(s, { f: name }), name, candidates: [] }, (i) => (id = i)).path;
      return { id, path };
    };
    const a = add("a");
    const b = add("b");
    s.insertRealisation("r1", "out", a.id);
    s.insertRealisation("r1", "dev", b.id);
    s.insertRealisation("r2", "out", b.id);
    const pairs: Array<[string, string]> = [["r1", "out"], ["r1", "dev"], ["r2", "out"], ["r2", "dev"], ["r3", "out"]];
    const m = s.realisations(pairs);
    assert.deepEqual([...m].sort(), [["r1\0dev", b.path], ["r1\0out", a.path], ["r2\0out", b.path]].sort());
    for (const [h, o] of pairs) assert.equal(m.get(`${h}\0${o}`), s.realisation(h, o));
    assert.equal(s.realisations([]).size, 0);
    s.close();
  });

  test("the builds still marked running are found through their index", () => {
    const s = tempStore();
    const plan = tablesOf(s).db.prepare("EXPLAIN QUERY PLAN SELECT id, resolved_hash FROM builds WHERE status = 'running'").all() as Array<{ detail: string }>;
    assert.match(plan.map((p) => p.detail).join("\n"), /builds_running/);
    s.close();
  });
});

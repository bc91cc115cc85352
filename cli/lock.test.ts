// kiln.lock on fixtures/fetch: `kiln lock` pins every fixed output (the seed's .debs too) and host
// tool (the fixture's one derivation that declares host tools on purpose); `--locked` refuses to
// build on drift (a bumped sha256 in a recipe, a host tool whose version moved) and names it;
// `kiln lock` shows the same diff and updates the file.
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { buildStarts, cleanup, copyFixture, git, isSeedNode, kiln, kilnJson, tempDir } from "./test-helpers/kiln.js";

interface LockFile {
  recipes: { entry: string };
  fixedOutputs: Record<string, { sha256: string; sources: string[] }>;
  hostTools: Record<string, { package: string | null; version: string | null; digest: string }>;
}

describe("kiln lock and --locked", { timeout: 120_000 }, () => {
  after(cleanup);
  const lockFile = (cwd: string) => join(cwd, "kiln.lock");
  const readLock = (cwd: string) => JSON.parse(readFileSync(lockFile(cwd), "utf8")) as LockFile;
  /** A copy of the fixture and a store of its own: each test changes one or the other. */
  const fresh = () => ({ cwd: copyFixture("fetch"), store: tempDir("store") });
  /** The same with a kiln.lock made by `kiln lock`, for the tests that start from one. */
  const locked = async () => {
    const o = fresh();
    const r = await kiln(["lock"], o);
    assert.equal(r.code, 0, r.stderr);
    return o;
  };

  test("--locked without a lockfile refuses and says how to make one", async () => {
    const r = await kiln(["realize", "--no-link", "--locked", "useGood"], fresh());
    assert.equal(r.code, 3, "a refused --locked has its own exit code: nothing was built, nothing failed");
    assert.match(r.stderr, /no .*kiln\.lock/);
    assert.match(r.stderr, /kiln lock/);
  });

  test("kiln lock pins every fixed output with its sources, and the host tools", async () => {
    const o = fresh();
    const r = await kiln(["lock"], o);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created .*kiln\.lock/);
    const lock = readLock(o.cwd);
    assert.equal(lock.recipes.entry, "recipes/index.ts");
    assert.equal(lock.fixedOutputs["data.txt"]!.sha256, "fa58e9396e91a3d21c024e11f70af1531aeed6ae2e4043ddc75bc4dc444e0fd4");
    assert.deepEqual(lock.fixedOutputs["data.txt"]!.sources, ["file:files/data.txt"], "local files relative to the recipe set");
    assert.deepEqual(lock.fixedOutputs["missing.bin"]!.sources, ["file:/nonexistent", "mirror:mirror", "http://127.0.0.1:9/x"]);
    assert.ok(lock.fixedOutputs["missing.bin"], "fixed outputs of every target, built or not");
    assert.ok(Object.keys(lock.fixedOutputs).some((k) => isSeedNode(k) && k.endsWith(".deb")), "the seed's .deb");
    assert.equal(lock.hostTools.sh!.package, "dash");
    assert.ok(lock.hostTools["pkg:coreutils"]!.version);
    const again = await kiln(["lock"], o);
    assert.match(again.stdout, /is up to date/);
  });

  test("--locked builds when nothing drifted", async () => {
    const r = await kilnJson(["realize", "--no-link", "--locked", "useGood"], await locked());
    assert.equal(buildStarts(r.events, "use-data").length, 1);
  });

  test("a bumped sha256 in a recipe: --locked refuses and shows old -> new; kiln lock updates", async () => {
    const o = await locked();
    const recipe = join(o.cwd, "recipes", "index.ts");
    const bumped = "0".repeat(63) + "1";
    writeFileSync(recipe, readFileSync(recipe, "utf8").replace('const DATA = "fa58e9396e91a3d21c024e11f70af1531aeed6ae2e4043ddc75bc4dc444e0fd4"', `const DATA = "${bumped}"`));
    const r = await kilnJson(["realize", "--no-link", "--locked", "useGood"], o, 3);
    assert.match(r.stderr, new RegExp(`fixedOutputs\\.data\\.txt\\.sha256: fa58e939\\w+ -> ${bumped}`));
    assert.equal(buildStarts(r.events).length, 0, "nothing is built");
    const check = await kiln(["lock", "--check"], o);
    assert.equal(check.code, 3);
    assert.match(check.stdout, /would change/);
    assert.equal(readLock(o.cwd).fixedOutputs["data.txt"]!.sha256, "fa58e9396e91a3d21c024e11f70af1531aeed6ae2e4043ddc75bc4dc444e0fd4", "--check writes nothing");
    const upd = await kiln(["lock"], o);
    assert.match(upd.stdout, /updated/);
    assert.equal(readLock(o.cwd).fixedOutputs["data.txt"]!.sha256, bumped);
  });

  test("a host tool whose package version moved: --locked names it", async () => {
    const o = await locked();
    const lock = readLock(o.cwd);
    const real = lock.hostTools.sh!.version;
    lock.hostTools.sh!.version = "0.0.1-1";
    writeFileSync(lockFile(o.cwd), JSON.stringify(lock, null, 2) + "\n");
    const r = await kiln(["realize", "--no-link", "--locked", "useHost"], o);
    assert.equal(r.code, 3);
    assert.ok(r.stderr.includes(`hostTools.sh.version: 0.0.1-1 -> ${real}`), r.stderr);
    assert.ok(existsSync(lockFile(o.cwd)));
  });
});

describe("kiln.lock in another clone of the same commit", { timeout: 120_000 }, () => {
  after(cleanup);

  test("the lock is byte-identical in a clone elsewhere, and realize --locked builds there", async () => {
    const store = tempDir("store");
    const origin = copyFixture("fetch");
    // the repository holds the fixture and the seed it imports (../lib), as kiln's own does
    const repo = dirname(origin);
    git(repo, "init", "-q");
    const made = await kiln(["lock"], { cwd: origin, store });
    assert.equal(made.code, 0, made.stderr);
    git(repo, "add", ".");
    git(repo, "commit", "-q", "-m", "recipes and their lock");
    const clone = join(tempDir("elsewhere"), "deeper", "clone", basename(origin));
    git(tmpdir(), "clone", "-q", repo, dirname(clone));

    const r = await kilnJson(["realize", "--no-link", "--locked", "useGood"], { cwd: clone, store });
    assert.equal(buildStarts(r.events, "use-data").length, 1);
    const check = await kiln(["lock"], { cwd: clone, store });
    assert.match(check.stdout, /is up to date/);
    // written anew in the clone, it is the same bytes as the one written in the original folder
    rmSync(join(clone, "kiln.lock"));
    const remade = await kiln(["lock"], { cwd: clone, store });
    assert.match(remade.stdout, /^created /);
    assert.equal(readFileSync(join(clone, "kiln.lock"), "utf8"), readFileSync(join(origin, "kiln.lock"), "utf8"));
  });
});

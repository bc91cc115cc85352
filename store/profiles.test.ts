// Profiles: which generations a deletion spec selects (pure, Nix's rules), and generations on a
// real temporary store: environments, GC roots, numbering, rollback, deletion and the links.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { KilnError } from "./errors.js";
import { collectGarbage } from "./gc.js";
import {
  addGeneration, deleteGenerations, listProfiles, profileGenerations, profilesDir, selectGenerations, switchGeneration, syncProfileLinks,
  validateProfileName, type ProfileEntry,
} from "./profiles.js";
import { removeTree, type StorePathName } from "./paths.js";
import { tablesOf, LocalStore } from "./local-store.js";

const DAY = 86_400_000;
const usage = (re: RegExp) => (e: unknown) => e instanceof KilnError && e.code === "USAGE" && re.test(e.message);

describe("selectGenerations", () => {
  // generations 1..5 created on days 1..5; the current one is 4 (after a rollback)
  const gens = [1, 2, 3, 4, 5].map((n) => ({ number: n, createdAt: n * DAY }));
  const sel = (specs: Parameters<typeof selectGenerations>[3], now = 10 * DAY) => selectGenerations("p", gens, 4, specs, now);

  test("numbers; never the current one; an unknown number is an error", () => {
    assert.deepEqual(sel([{ kind: "number", n: 2 }, { kind: "number", n: 5 }]), [2, 5]);
    assert.throws(() => sel([{ kind: "number", n: 4 }]), usage(/generation 4 is the current generation of profile p/));
    assert.throws(() => sel([{ kind: "number", n: 9 }]), usage(/profile p has no generation 9/));
  });

  test("old: all but the current", () => {
    assert.deepEqual(sel([{ kind: "old" }]), [1, 2, 3, 5]);
  });

  test("+K keeps the newest K, and the current one whatever K is", () => {
    assert.deepEqual(sel([{ kind: "keep", newest: 2 }]), [1, 2, 3]);
    assert.deepEqual(sel([{ kind: "keep", newest: 1 }]), [1, 2, 3], "5 is the newest, 4 the current");
    assert.deepEqual(sel([{ kind: "keep", newest: 9 }]), []);
    assert.throws(() => sel([{ kind: "keep", newest: 0 }]), usage(/cannot keep 0 generations/));
  });

  test("an age: older ones go, except the newest of them (it was current then), as Nix does", () => {
    // now = day 10; older than 6.5 days: created before day 3.5 -> 1, 2, 3; 3 stays
    assert.deepEqual(sel([{ kind: "olderThan", ms: 6.5 * DAY }]), [1, 2]);
    assert.deepEqual(sel([{ kind: "olderThan", ms: 20 * DAY }]), []);
    assert.deepEqual(sel([{ kind: "olderThan", ms: 0 }]), [1, 2, 3], "5 is the newest of all; 4 is current");
  });

  test("specs combine", () => {
    assert.deepEqual(sel([{ kind: "number", n: 5 }, { kind: "keep", newest: 3 }]), [1, 2, 5]);
  });

  test("profile names", () => {
    for (const ok of ["dev", "my.profile", "a_b=c+d-1"]) validateProfileName(ok);
    for (const bad of ["", ".hidden", "a/b", "a:b", "x".repeat(101), "dev-3-link", "with space"]) {
      assert.throws(() => validateProfileName(bad), usage(/invalid profile name/), bad);
    }
  });
});

// ---- a real store ------------------------------------------------------------------------------

const temps: string[] = [];
after(() => temps.forEach(removeTree));
function tempStore(): LocalStore {
  const r = mkdtempSync(join(tmpdir(), "kiln-profiles-"));
  temps.push(r);
  return LocalStore.open(r);
}

function add(store: LocalStore, name: string, text = name): StorePathName {
  const dir = join(store.scratchDir("t"), name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "f"), text);
  return store.addOutput({ scratch: dir, name, candidates: [] }, () => {}).path;
}
const entry = (name: string, path: StorePathName): ProfileEntry => ({ name, output: "out", drv: `drv-${name}`, path });
const roots = (s: LocalStore) => tablesOf(s).db.prepare("SELECT name, path FROM roots WHERE kind = 'generation' ORDER BY name").all() as Array<{ name: string; path: string }>;

describe("generations on a store", () => {
  test("an environment per generation, rooted in the same transaction; the same outputs make none", () => {
    const s = tempStore();
    const a = add(s, "a");
    const b = add(s, "b");
    const g1 = addGeneration(s, "dev", [entry("a", a)], 1000);
    assert.deepEqual([g1.generation.number, g1.created], [1, true]);
    assert.match(g1.generation.path, /-profile-dev$/);
    assert.equal(readlinkSync(join(s.hostPath(g1.generation.path), "a")), `../${a}`);
    assert.deepEqual(s.pathInfo(g1.generation.path)!.references, [a], "the environment references its outputs");
    assert.deepEqual(roots(s), [{ name: "gen:dev:1", path: g1.generation.path }]);

    const same = addGeneration(s, "dev", [entry("a", a)], 2000);
    assert.deepEqual([same.generation.number, same.created], [1, false]);
    const g2 = addGeneration(s, "dev", [entry("b", b), entry("a", a)], 3000);
    assert.deepEqual([g2.generation.number, g2.created, g2.previous], [2, true, 1]);
    assert.deepEqual(g2.generation.entries.map((e) => e.name), ["a", "b"], "sorted by name");
    assert.deepEqual(listProfiles(s), [{ name: "dev", current: 2, generations: [1, 2] }]);

    syncProfileLinks(s, "dev");
    const dir = profilesDir(s);
    assert.deepEqual(readdirSync(dir).sort(), ["dev", "dev-1-link", "dev-2-link"]);
    assert.equal(readFileSync(join(dir, "dev", "b", "f"), "utf8"), "b");

    assert.deepEqual(switchGeneration(s, "dev", "previous"), { from: 2, to: 1 });
    assert.throws(() => switchGeneration(s, "dev", "previous"), usage(/no generation before its current one \(1\)/));
    assert.throws(() => switchGeneration(s, "nope", 1), usage(/there is no profile named "nope"/));
    syncProfileLinks(s, "dev");
    assert.equal(realpathSync(join(dir, "dev")), s.hostPath(g1.generation.path));

    // deleting 2 (not current) removes its row and root together; its number is not given again
    assert.deepEqual(deleteGenerations(s, "dev", [{ kind: "old" }], 4000).map((g) => g.number), [2]);
    assert.deepEqual(roots(s).map((r) => r.name), ["gen:dev:1"]);
    assert.equal(profileGenerations(s, "dev").generations.length, 1);
    assert.equal(addGeneration(s, "dev", [entry("b", b)], 5000).generation.number, 3);
    syncProfileLinks(s, "dev");
    assert.deepEqual(readdirSync(dir).sort(), ["dev", "dev-1-link", "dev-3-link"]);
    s.close();
  });

  test("gc keeps every generation's closure; a deleted generation's paths go", async () => {
    const s = tempStore();
    const a = add(s, "a");
    const b = add(s, "b");
    const c = add(s, "c");
    const g1 = addGeneration(s, "dev", [entry("x", a)], 1000).generation;
    const g2 = addGeneration(s, "dev", [entry("x", b)], 2000).generation;
    tablesOf(s).db.exec("DELETE FROM temp_roots"); // as if the kiln that made them had exited
    const r = await collectGarbage(s, { now: Date.now });
    assert.deepEqual(r.deleted.map((d) => d.path), [c]);
    deleteGenerations(s, "dev", [{ kind: "number", n: 1 }], 3000);
    const r2 = await collectGarbage(s, { now: Date.now });
    assert.deepEqual(r2.deleted.map((d) => d.path).sort(), [a, g1.path].sort());
    assert.deepEqual(s.allPaths().map((p) => p.path).sort(), [b, g2.path].sort());
    s.close();
  });

  test("entries that cannot be links, or collide, or were collected are refused", () => {
    const s = tempStore();
    const a = add(s, "a");
    const b = add(s, "b");
    assert.throws(() => addGeneration(s, "dev", [entry("x/y", a)], 1), usage(/cannot name a link/));
    assert.throws(() => addGeneration(s, "dev", [entry("x", a), entry("x", b)], 1), usage(/two outputs would be linked as x/));
    assert.throws(() => addGeneration(s, "dev", [], 1), usage(/nothing to put in the profile/));
    s.invalidate([b]);
    assert.throws(() => addGeneration(s, "dev", [entry("b", b)], 1), (e: unknown) => e instanceof KilnError && e.code === "STORE_PATH_INVALID");
    assert.deepEqual(listProfiles(s), [], "no failed attempt left a profile behind");
    s.close();
  });
});

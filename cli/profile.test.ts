// Profiles end to end: `kiln realize --profile`, `kiln profile list|history|rollback|
// delete-generations` and `kiln gc --keep-generations`, with the compiled CLI on temporary stores.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { after, describe, test } from "node:test";
import { spawn } from "node:child_process";
import { cleanup, copyFixture, kiln, query, tempDir, closureSql, allValid, onDisk, REPO } from "./test-helpers/kiln.js";

after(cleanup);

type O = { cwd: string; store: string };

async function ok(args: string[], o: O) {
  const r = await kiln(args, o);
  assert.equal(r.code, 0, `kiln ${args.join(" ")}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function fails(args: string[], o: O, message: RegExp) {
  const r = await kiln(args, o);
  assert.equal(r.code, 2, `kiln ${args.join(" ")} should fail: ${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message);
  return r;
}

const generations = (store: string, profile: string) =>
  query<{ number: number; path: string }>(store, "SELECT number, path FROM generations WHERE profile = ? ORDER BY number", profile);
const envOf = (store: string, profile: string, n: number) => generations(store, profile).find((g) => g.number === n)!.path;
const greetingIn = (store: string, env: string) => basename(readlinkSync(join(store, "store", env, "greeting")));

describe("kiln realize --profile and kiln profile", { timeout: 300_000 }, () => {
  test("generations of a changing recipe: history, gc keeps every generation, rollback, --keep-generations", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    const o = { cwd, store };
    const profiles = join(store, "profiles");

    const g1 = await ok(["realize", "--no-link", "--profile", "dev", "greeting"], o);
    assert.match(g1.stderr, /profile dev: generation 1, .*\/profiles\/dev\n/);
    const again = await ok(["realize", "--no-link", "--profile", "dev", "greeting"], o);
    assert.match(again.stderr, /profile dev: unchanged, still generation 1/);
    assert.equal(generations(store, "dev").length, 1, "the same outputs make no new generation");

    const recipe = join(cwd, "recipes", "index.ts");
    writeFileSync(recipe, readFileSync(recipe, "utf8").replace('CFLAGS: "-O2"', 'CFLAGS: "-DNDEBUG"'));
    const g2 = await ok(["realize", "--no-link", "-p", "dev", "greeting"], o);
    assert.match(g2.stderr, /profile dev: generation 2 \(was 1\)/);
    const [env1, env2] = [envOf(store, "dev", 1), envOf(store, "dev", 2)];
    const [greet1, greet2] = [greetingIn(store, env1), greetingIn(store, env2)];
    assert.notEqual(greet1, greet2);

    // the current link, as Nix's: profiles/dev -> dev-2-link -> the environment
    assert.equal(readlinkSync(join(profiles, "dev")), "dev-2-link");
    assert.equal(realpathSync(join(profiles, "dev")), join(store, "store", env2));
    assert.equal(readFileSync(join(profiles, "dev", "greeting", "greeting.txt"), "utf8"), "hello, world\n");
    assert.equal(realpathSync(join(profiles, "dev-1-link", "greeting")), join(store, "store", greet1));

    assert.equal((await ok(["profile", "list"], o)).stdout, `dev\tgeneration 2 (of 1, 2)\t${join(profiles, "dev")}\n`);
    const hist = (await ok(["profile", "history", "dev"], o)).stdout;
    assert.match(hist, /^profile dev: 2 generations, current 2/);
    assert.match(hist, new RegExp(`generation 1  \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC\\n  greeting  ${join(store, "store", greet1)}\\n`));
    assert.match(hist, new RegExp(`generation 2  [^\\n]* UTC  \\(current\\)\\n  greeting  ${join(store, "store", greet2)}\\n`));
    assert.match(hist, /since 1: greeting: 3 derivations changed; env CFLAGS of libgreet: "-O2" → "-DNDEBUG"/);
    const hj = JSON.parse((await ok(["profile", "history", "dev", "--json"], o)).stdout) as {
      current: number; generations: Array<{ number: number; current: boolean; changes: Array<{ name: string; change: string; derivations: number }> }>;
    };
    assert.deepEqual(hj.generations.map((g) => [g.number, g.current]), [[1, false], [2, true]]);
    assert.deepEqual(hj.generations[1]!.changes.map((c) => [c.name, c.change, c.derivations]), [["greeting", "changed", 3]]);
    assert.match((await ok(["roots"], o)).stdout, /generation dev:1\t.*-profile-dev\t[\s\S]*generation dev:2\t/);

    // no result links, no pins: the generations alone keep both closures, and nothing else
    await ok(["gc"], o);
    const both = closureSql(store, [env1, env2]);
    assert.ok(both.includes(greet1) && both.includes(greet2));
    assert.deepEqual(allValid(store), both);
    assert.deepEqual(onDisk(store), both);

    // rollback: the link moves, the generations stay
    const rb = await ok(["profile", "rollback", "dev"], o);
    assert.match(rb.stdout, /profile dev: switched from generation 2 to 1/);
    assert.equal(readlinkSync(join(profiles, "dev")), "dev-1-link");
    assert.equal(realpathSync(join(profiles, "dev", "greeting")), join(store, "store", greet1));
    await fails(["profile", "rollback", "dev"], o, /profile dev has no generation before its current one \(1\)[\s\S]*hint: switch forward with kiln profile rollback dev --to <N>/);
    // a new realize after a rollback is a new generation, numbered after the newest
    const g3 = await ok(["realize", "--no-link", "-p", "dev", "greeting"], o);
    assert.match(g3.stderr, /profile dev: generation 3 \(was 1\)/);
    assert.equal(envOf(store, "dev", 3), env2, "the same outputs: the same environment (content addressed)");
    assert.equal(readlinkSync(join(profiles, "dev")), "dev-3-link");

    // a dry run marks as if the generations were gone, and deletes neither them nor paths
    const dry = await ok(["gc", "--dry-run", "--keep-generations", "1"], o);
    assert.match(dry.stdout, /^would delete generation 1 of profile dev .*\nwould delete generation 2 of profile dev /m);
    const wouldGo = dry.stdout.split("\n").filter((l) => l.startsWith("would delete ") && l.includes("/store/")).map((l) => basename(l.trim().split(/\s+/).pop()!));
    const validBefore = allValid(store);
    assert.deepEqual(wouldGo.sort(), validBefore.filter((p) => !closureSql(store, [env2]).includes(p)));
    assert.ok(wouldGo.includes(env1) && wouldGo.includes(greet1), "generation 1's own paths would go");
    assert.deepEqual(generations(store, "dev").map((g) => g.number), [1, 2, 3]);

    // --keep-generations 1: generations 1 and 2 go before the mark; what only 1 kept goes too
    const gc = await ok(["gc", "--keep-generations", "1"], o);
    assert.deepEqual(allValid(store).length + wouldGo.length, validBefore.length, "what the dry run said");
    assert.match(gc.stdout, /^deleted generation 1 of profile dev .*\ndeleted generation 2 of profile dev /m);
    assert.deepEqual(generations(store, "dev").map((g) => g.number), [3]);
    const live = closureSql(store, [env2]);
    assert.deepEqual(allValid(store), live);
    assert.deepEqual(onDisk(store), live);
    assert.ok(!live.includes(greet1) && !live.includes(env1), "generation 1's own paths were collected");
    assert.deepEqual(readdirSync(profiles).sort(), ["dev", "dev-3-link"]);
    assert.equal(readFileSync(join(profiles, "dev", "greeting", "greeting.txt"), "utf8"), "hello, world\n");

    // clear errors
    await fails(["profile", "history", "prod"], o, /there is no profile named "prod"[\s\S]*hint: the profiles are: dev/);
    await fails(["profile", "rollback", "dev", "--to", "1"], o, /profile dev has no generation 1\n  hint: its generations are 3/);
    await fails(["profile", "delete-generations", "dev", "3"], o, /generation 3 is the current generation of profile dev; it cannot be deleted/);
    await fails(["profile", "delete-generations", "dev", "yesterday"], o, /bad generation spec "yesterday"\n  hint: give generation numbers/);
    await fails(["realize", "--no-link", "-p", "a/b", "greeting"], o, /invalid profile name "a\/b"/);
    await fails(["gc", "--keep-generations", "0"], o, /--keep-generations: cannot keep 0 generations/);
  });

  test("delete-generations: numbers, +K, ages and old; gc --delete-older-than", async () => {
    const cwd = copyFixture("gc");
    const store = tempDir("store");
    const o = { cwd, store };
    const profiles = join(store, "profiles");
    for (const t of [["a"], ["b"], ["a", "b"], ["c"]]) await ok(["realize", "--no-link", "-p", "p", ...t], o);
    assert.deepEqual(generations(store, "p").map((g) => g.number), [1, 2, 3, 4]);
    const entries = readdirSync(join(profiles, "p-3-link")).sort();
    assert.deepEqual(entries, ["a", "b"], "one link per target");

    const one = await ok(["profile", "delete-generations", "p", "1"], o);
    assert.match(one.stdout, /^deleted generation 1 of p \(/);
    assert.ok(!existsSync(join(profiles, "p-1-link")));
    assert.deepEqual(query(store, "SELECT name FROM roots WHERE kind = 'generation' ORDER BY name"), [{ name: "gen:p:2" }, { name: "gen:p:3" }, { name: "gen:p:4" }]);

    const dry = await ok(["profile", "delete-generations", "p", "+2", "--dry-run"], o);
    assert.match(dry.stdout, /^would delete generation 2 of p /);
    assert.equal(generations(store, "p").length, 3, "a dry run deletes nothing");
    await ok(["profile", "delete-generations", "p", "+2"], o);
    assert.deepEqual(generations(store, "p").map((g) => g.number), [3, 4]);

    assert.match((await ok(["profile", "delete-generations", "p", "1d"], o)).stdout, /no generation of p matches/);
    // after a rollback to 3, 'old' deletes all but the current: 4 goes, 3 stays
    await ok(["profile", "rollback", "p"], o);
    await ok(["profile", "delete-generations", "p", "old"], o);
    assert.deepEqual(generations(store, "p").map((g) => g.number), [3]);
    assert.deepEqual(readdirSync(profiles).sort(), ["p", "p-3-link"]);

    // gc --delete-older-than: with every generation younger than a day, nothing goes. (The new
    // generation is 5: 4 was deleted, and numbers are never given twice.)
    assert.match((await ok(["realize", "--no-link", "-p", "p", "c"], o)).stderr, /profile p: generation 5 \(was 3\)/);
    const young = await ok(["gc", "--delete-older-than", "1d"], o);
    assert.doesNotMatch(young.stdout, /deleted generation/);
    assert.deepEqual(generations(store, "p").map((g) => g.number), [3, 5]);
    const [blobA] = query<{ path: string }>(store, "SELECT path FROM valid_paths WHERE path LIKE '%-blob-a'");
    assert.ok(blobA, "generation 3 keeps blob-a");
    // with another gc running (a process holding the store's gc lock), a gc that would delete
    // generations fails before deleting any
    const holder = spawn(process.execPath, ["--import", "tsx", join(REPO, "store", "test-helpers", "hold-lock.ts"), store, "gc"], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((res, rej) => {
      holder.stdout!.once("data", (d: Buffer) => (String(d).includes("locked") ? res() : rej(new Error(String(d)))));
      holder.once("exit", (c) => rej(new Error(`hold-lock exited with ${c}`)));
    });
    try {
      await fails(["gc", "--delete-older-than", "0s"], o, /another kiln gc is running on this store/);
      assert.deepEqual(generations(store, "p").map((g) => g.number), [3, 5], "no generation deleted while another gc runs");
    } finally {
      holder.kill("SIGKILL");
      await new Promise((res) => holder.once("exit", res));
    }
    // 0s: all are older; the newest of them (5, the current) stays, as Nix keeps it
    const old = await ok(["gc", "--delete-older-than", "0s"], o);
    assert.match(old.stdout, /deleted generation 3 of profile p/);
    assert.deepEqual(generations(store, "p").map((g) => g.number), [5]);
    assert.deepEqual(allValid(store), closureSql(store, [envOf(store, "p", 5)]));
    assert.ok(!allValid(store).some((p) => p.endsWith("-blob-a")), "blob-a went with generation 3");
  });
});

// Never lose the store (fixtures/robust): a lost or damaged database is refused and repaired from
// its backup, a full or read-only disk and bad input end in typed errors naming the file, a build
// that fills the disk fails cleanly, the sandbox shows no host path in /proc, and a recorded
// output missing from disk is built again. Real conditions: real SQLite files damaged on disk, a
// real tmpfs that fills up, real read-only bind mounts, a real unprivileged user.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { addDanglingReference, overwriteTablePage } from "../store/test-helpers/damage.js";
import { bindReadOnly, canMount, fillUp, mountOverlay, mountTmpfs, unmount, unmountAll } from "./test-helpers/mounts.js";
import {
  buildRows, buildStarts, cleanup, REPO, type Ev, closureSql, copyFixture, eventsOf, hostStorePath, isSeedPath, kiln, kilnJson, onDisk, query, queryFile, tempDir, validPaths,
} from "./test-helpers/kiln.js";

const needsRoot = canMount ? false : "needs root: it mounts a tmpfs or a read-only bind mount, or runs kiln as another user";

/**
 * A tmpfs a store fills up: room for the fixtures' seed, which every build here needs (BusyBox's
 * .deb, its unpacked tree and the merged one: 3.1 MiB on disk), and a little more.
 */
const SMALL_DISK = "8m";

/** The store paths of the fixture's own derivations (the seed's left out). */
const own = (paths: string[]) => paths.filter((p) => !isSeedPath(p));

describe("the store survives damage and bad input", { timeout: 600_000 }, () => {
  let cwd: string;
  const o = (store: string) => ({ cwd, store });
  const db = (store: string) => join(store, "db.sqlite");

  before(() => {
    cwd = copyFixture("robust");
  });
  after(() => {
    unmountAll();
    cleanup();
  });

  /** A store with a result link (top -> base), a pin (small) and a profile generation (small). */
  async function populated(): Promise<{ store: string; link: string }> {
    const store = tempDir("store");
    const link = join(tempDir("links"), "result");
    await kilnJson(["realize", "-o", link, "top"], o(store));
    await kilnJson(["realize", "--no-link", "-p", "dev", "small"], o(store));
    await kilnJson(["pin", "add", "keep", "small"], o(store));
    return { store, link };
  }

  const noInternalError = (r: { stderr: string }) => {
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  };

  test("an emptied or deleted database beside a store that holds paths is refused, and nothing is deleted", async () => {
    const { store } = await populated();
    const paths = onDisk(store);
    assert.equal(own(paths).length, 4, "top, base, small, the profile generation");
    writeFileSync(db(store), "");
    for (const args of [["realize", "--no-link", "small"], ["gc"], ["verify"], ["pin", "list"]]) {
      const r = await kiln(args, o(store));
      assert.equal(r.code, 1, `kiln ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`db\\.sqlite is missing or empty, but .*/store holds ${paths.length} store path\\(s\\); kiln will not treat them as garbage`));
      assert.match(r.stderr, /kiln verify --repair/);
      noInternalError(r);
    }
    assert.equal(statSync(db(store)).size, 0, "the empty file is left as it is");
    rmSync(db(store));
    const gc = await kiln(["gc"], o(store));
    assert.equal(gc.code, 1, gc.stderr);
    assert.match(gc.stderr, /missing or empty/);
    assert.ok(!existsSync(db(store)), "no new database was made");
    assert.deepEqual(onDisk(store), paths, "every store path is still there");
  });

  test("verify --repair restores the backup (roots, pins, profiles, history) and registers a path newer than it by re-hashing", async () => {
    const { store, link } = await populated();
    // built after the last backup: its roots did not change, so no backup was made since
    await kilnJson(["realize", "--no-link", "wideEnv"], o(store));
    const [wide] = validPaths(store, "wide-env");
    assert.ok(wide);
    const backup = join(store, "db.backup.sqlite");
    assert.deepEqual(queryFile(backup, "SELECT path FROM valid_paths WHERE path = ?", wide), [], "the backup predates it");
    const before = { roots: query(store, "SELECT name, kind, path FROM roots ORDER BY name"), builds: buildRows(store).length };

    writeFileSync(db(store), "");
    const r = await kiln(["verify", "--repair"], o(store));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /missing or empty/);
    assert.match(r.stdout, /kept as .*db\.sqlite\.damaged-\d{8}T\d{6}Z/);
    assert.match(r.stdout, /restored its backup .*db\.backup\.sqlite/);
    assert.match(r.stdout, new RegExp(`registered 1 intact path\\(s\\) found on disk again \\(re-hashed\\): ${wide}`));
    assert.match(r.stdout, /store is consistent \(repaired\)/);

    assert.deepEqual(query(store, "SELECT name, kind, path FROM roots ORDER BY name"), before.roots, "link, pin and generation roots are back");
    assert.equal(buildRows(store).length, before.builds - 1, "the history up to the backup (wide-env's build came after it)");
    const pins = await kiln(["pin", "list"], o(store));
    assert.match(pins.stdout, /^keep\t.*-small\t/m);
    const prof = await kiln(["profile", "list"], o(store));
    assert.match(prof.stdout, /dev\tgeneration 1 \(of 1\)/);
    // the realisations are back too: nothing is built again
    const again = await kilnJson(["realize", "--no-link", "top", "small"], o(store));
    assert.deepEqual(buildStarts(again.events), []);
    // a gc keeps what the restored roots keep, and the link still roots top
    const gc = await kiln(["gc"], o(store));
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(onDisk(store).filter((p) => !p.endsWith("-wide-env")).length, 4);
    assert.ok(existsSync(realpathSync(link)));
    const v = await kiln(["verify"], o(store));
    assert.equal(v.code, 0, v.stdout);
  });

  test("without a backup, verify --repair registers every intact path with its references and pins profile generations; a damaged one is left to gc", async () => {
    const { store } = await populated();
    const [base] = validPaths(store, "base");
    const [top] = validPaths(store, "top");
    const intact = onDisk(store).length;
    // a partly deleted path: its name no longer matches its content
    const fake = `${top!.slice(0, 31)}0-top`;
    mkdirSync(hostStorePath(store, fake));
    writeFileSync(join(hostStorePath(store, fake), "copy"), "half\n");
    rmSync(db(store));
    rmSync(join(store, "db.backup.sqlite"));

    const r = await kiln(["verify", "--repair"], o(store));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /no backup could be restored \(there is none\)/);
    assert.match(r.stdout, new RegExp(`registered ${intact} intact path\\(s\\)`));
    assert.match(r.stdout, /pinned recovered-profile-dev-1 -> .*-profile-dev/);
    assert.match(r.stdout, new RegExp(`stray +.*${fake} \\(not registered: its content does not give its name`));
    assert.deepEqual(closureSql(store, [top!]), [base!, top!].sort(), "top's reference to base was found again");
    const gc = await kiln(["gc"], o(store));
    assert.equal(gc.code, 0, gc.stderr);
    assert.ok(!existsSync(hostStorePath(store, fake)), "the damaged stray is collected, now that the database is known good");
    assert.ok(onDisk(store).some((p) => p.endsWith("-profile-dev")), "the pinned generation is kept");
  });

  test("verify runs SQLite's integrity and foreign-key checks; gc refuses a damaged database; --repair restores the backup", async () => {
    const { store } = await populated();
    const paths = onDisk(store);
    overwriteTablePage(store, "valid_paths");
    const v = await kiln(["verify"], o(store));
    assert.equal(v.code, 1, v.stdout + v.stderr);
    assert.match(v.stdout + v.stderr, /damaged|DAMAGED/);
    assert.doesNotMatch(v.stdout, /store is consistent/);
    noInternalError(v);
    const gc = await kiln(["gc"], o(store));
    assert.equal(gc.code, 1, gc.stderr);
    assert.match(gc.stderr, /db\.sqlite is damaged/);
    assert.deepEqual(onDisk(store), paths, "gc deleted nothing");
    const repair = await kiln(["verify", "--repair"], o(store));
    assert.equal(repair.code, 0, repair.stdout + repair.stderr);
    assert.match(repair.stdout, /restored its backup/);

    addDanglingReference(store);
    const fk = await kiln(["verify", "--json"], o(store));
    assert.equal(fk.code, 1, fk.stdout);
    const report = JSON.parse(fk.stdout) as { ok: boolean; database: { ok: boolean; foreignKeys: Array<{ table: string }> } };
    assert.equal(report.database.ok, false);
    assert.deepEqual(report.database.foreignKeys.map((f) => f.table), ["refs"]);
    const fixed = await kiln(["verify", "--repair"], o(store));
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.equal((await kiln(["verify"], o(store))).code, 0);
  });

  test("a database that is not one, a read-only database file and a full disk: exit 1 naming the file", { skip: needsRoot }, async () => {
    const { store } = await populated();
    const saved = readFileSync(db(store));
    writeFileSync(db(store), Buffer.alloc(8192, 0x5a));
    const notDb = await kiln(["realize", "--no-link", "small"], o(store));
    assert.equal(notDb.code, 1, notDb.stderr);
    assert.match(notDb.stderr, new RegExp(`the store database ${db(store)} is damaged \\(file is not a database\\)`));
    noInternalError(notDb);
    writeFileSync(db(store), saved);

    bindReadOnly(db(store));
    try {
      const ro = await kiln(["realize", "--no-link", "base"], o(store));
      assert.equal(ro.code, 1, ro.stderr);
      assert.match(ro.stderr, new RegExp(`the store database ${db(store)} cannot be written \\(attempt to write a readonly database\\)`));
      noInternalError(ro);
    } finally {
      unmount(db(store));
    }

    const mnt = tempDir("full");
    mountTmpfs(mnt, SMALL_DISK);
    try {
      const small = join(mnt, "store");
      await kilnJson(["realize", "--no-link", "small"], o(small));
      fillUp(join(mnt, "filler"));
      const full = await kiln(["pin", "add", "p", "small"], o(small));
      assert.equal(full.code, 1, full.stderr);
      assert.match(full.stderr, new RegExp(`no space left on device: the store database ${db(small)} could not be written`));
      noInternalError(full);
    } finally {
      unmount(mnt);
    }
  });

  test("a malformed kiln.lock: exit 2 naming the file, line and column", async () => {
    const store = tempDir("store");
    const lock = join(cwd, "kiln.lock");
    try {
      const made = await kiln(["lock"], o(store));
      assert.equal(made.code, 0, made.stderr);
      const text = readFileSync(lock, "utf8");
      truncateSync(lock, text.indexOf('"hostTools"') + 5);
      const lines = readFileSync(lock, "utf8").split("\n");
      const at = `${lines.length}:${lines.at(-1)!.length + 1}`;
      for (const args of [["realize", "--no-link", "--locked", "small"], ["lock"]]) {
        const r = await kiln(args, o(store));
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`${lock}:${at} is not a valid kiln.lock`));
        noInternalError(r);
      }
    } finally {
      rmSync(lock, { force: true });
    }
  });

  test("a build that fills the disk fails cleanly: exit 1, no space left named, scratch removed, row finished", { skip: needsRoot }, async () => {
    const mnt = tempDir("tmpfs");
    mountTmpfs(mnt, SMALL_DISK);
    try {
      const store = join(mnt, "store");
      const r = await kiln(["--reporter", "json", "realize", "--no-link", "fill"], o(store));
      assert.equal(r.code, 1, r.stderr);
      const [failed] = eventsOf(r.events, "failed", "fill");
      assert.match(failed!.message!, /no space left on device/);
      assert.ok(failed!.logTail!.some((l) => /No space left on device/.test(l)), `${failed!.logTail!.join("\n")}\n${r.stderr}\n${JSON.stringify(failed)}`);
      noInternalError(r);
      assert.deepEqual(readdirSync(join(store, "tmp")), [], "the scratch directory is gone");
      assert.deepEqual(buildRows(store, "fill").map((b) => b.status), ["failed"]);
      assert.deepEqual(own(onDisk(store)), []);
      assert.equal((await kiln(["verify"], o(store))).code, 0);
      // the space is back: the next build works
      await kilnJson(["realize", "--no-link", "small"], o(store));
    } finally {
      unmount(mnt);
    }
  });

  test("a --store that is a file, on a read-only mount, or not writable by the user: exit 2", { skip: needsRoot }, async () => {
    const file = join(tempDir("file"), "not-a-dir");
    writeFileSync(file, "x");
    const asFile = await kiln(["realize", "--no-link", "small"], o(file));
    assert.equal(asFile.code, 2, asFile.stderr);
    assert.match(asFile.stderr, new RegExp(`the store ${file} cannot be used: it is a file, not a directory`));
    noInternalError(asFile);
    assert.equal(readFileSync(file, "utf8"), "x");

    const ro = tempDir("ro");
    bindReadOnly(ro);
    try {
      for (const store of [ro, join(ro, "new")]) {
        const r = await kiln(["realize", "--no-link", "small"], o(store));
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /cannot be used: it is on a read-only file system/);
        noInternalError(r);
      }
    } finally {
      unmount(ro);
    }

    const closed = tempDir("closed"); // 0700, another user's
    chmodSync(closed, 0o700);
    chownSync(closed, 65534, 65534);
    const r = await kiln(["realize", "--no-link", "small"], { cwd: "/", store: join(closed, "store"), unprivileged: true });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /cannot be used: permission denied/);
    noInternalError(r);
  });

  test("an env value over the kernel's limit is refused at evaluation naming it; a wide environment reaches the build whole", async () => {
    const store = tempDir("store");
    const r = await kiln(["-f", "recipes/big-env.ts", "realize", "--no-link", "bigEnv"], o(store));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /derivation big-env \(.*big-env\.ts:\d+:\d+\): env HUGE is 300\.0 KiB; the kernel starts no program with a variable or argument of 128\.0 KiB or more/);
    noInternalError(r);
    assert.deepEqual(buildRows(store), []);
    const wide = await kilnJson(["realize", "--no-link", "wideEnv"], o(store));
    const [built] = eventsOf(wide.events, "built", "wide-env");
    assert.equal(readFileSync(join(hostStorePath(store, built!.paths!.out!), "length"), "utf8").trim(), String(2 * 100 * 1024));
  });

  /** The robust fixture's /proc scan, looking for the store's and the recipe set's host paths: its hits, its mountinfo and the run's events. */
  async function procScan(env: Record<string, string> = {}): Promise<{ hits: string[]; mountinfo: string; events: Ev[] }> {
    const store = tempDir("store");
    const probe = copyFixture("robust");
    const recipe = join(probe, "recipes", "index.ts");
    const text = readFileSync(recipe, "utf8");
    assert.ok(text.includes('const HIDDEN = "";'));
    // the store (its paths, the builds' scratch and shared dirs under it) and the recipe set
    writeFileSync(recipe, text.replace('const HIDDEN = "";', `const HIDDEN = ${JSON.stringify([store, probe].join(",").replaceAll("/", "%"))};`));
    const r = await kilnJson(["realize", "--no-link", "procScan"], { cwd: probe, store, env });
    const out = hostStorePath(store, eventsOf(r.events, "built", "proc-scan")[0]!.paths!.out!);
    assert.equal(readFileSync(join(out, "patterns"), "utf8").trim(), "1", "two patterns, one newline between them");
    return { hits: readFileSync(join(out, "hits"), "utf8").split("\n").filter(Boolean), mountinfo: readFileSync(join(out, "mountinfo"), "utf8"), events: r.events };
  }

  test("a build finds no host path anywhere in /proc (bubblewrap's options come through a pipe, its environment is empty)", async () => {
    const { hits, mountinfo, events } = await procScan();
    // an overlay of the build's own is what hides them in mountinfo: kiln said nothing of bind mounts
    assert.deepEqual(eventsOf(events, "warning").map((e) => String(e.message)), []);
    // mountinfo too: the store and the scratch dir come through that overlay (engine/builders/sandbox.ts,
    // StoreView), whose mounts name paths inside it
    assert.deepEqual(hits, []);
    assert.match(mountinfo, / \/kiln\/store rw,\S* .*- overlay kiln /m, "the output dir is the overlay's, writable");
    assert.match(mountinfo, /^\S+ \S+ \S+ \/([a-z0-9]{32}-[^ ]+) \/kiln\/store\/\1 ro,.* - overlay kiln .*lowerdir=\.\.\/\.\.\/store:\.\.\/\.\.\/sandbox,/m,
      "an input is the overlay's, read-only, its options relative to the scratch dir");
  });

  test("with bind mounts asked for (KILN_SANDBOX_VIEW=binds), builds work, kiln does not warn, and mountinfo is where host paths show", async () => {
    const { hits, mountinfo, events } = await procScan({ KILN_SANDBOX_VIEW: "binds" });
    assert.deepEqual(eventsOf(events, "warning"), []);
    assert.ok(hits.length > 0 && hits.every((h) => /^\/proc\/\d+(\/task\/\d+)?\/mountinfo$/.test(h)), hits.join("\n"));
    assert.doesNotMatch(mountinfo, / - overlay kiln /);
  });

  const helper = join(REPO, "dist", "kiln-sandbox");
  test("kiln's sandbox helper mounts the overlay in a namespace of its own and becomes the program; a mount that fails is exit 125, said so",
    { skip: existsSync(helper) ? false : "dist/kiln-sandbox was not built: npm run build found no C compiler" }, () => {
    const dir = tempDir("helper");
    for (const d of ["lower", "upper", "work"]) mkdirSync(join(dir, d));
    writeFileSync(join(dir, "lower", "f"), "from the lower layer\n");
    // mounted over its working directory: a path through it leads into the overlay
    const ok = spawnSync(helper, ["lowerdir=lower,upperdir=upper,workdir=work,userxattr,volatile", "/bin/sh", "-c", `cat ${dir}/f && echo new > ${dir}/g && grep ' - overlay kiln ' /proc/self/mountinfo`],
      { cwd: dir, env: {}, encoding: "utf8" });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^from the lower layer\\n.* ${dir} rw,.* - overlay kiln rw,lowerdir=lower,upperdir=upper,workdir=work,`, "s"));
    assert.equal(readFileSync(join(dir, "upper", "g"), "utf8"), "new\n", "writes go to the upper layer");
    const bad = spawnSync(helper, ["lowerdir=nonexistent,upperdir=upper,workdir=work,userxattr", "/bin/true"], { cwd: dir, env: {}, encoding: "utf8" });
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /^kiln-sandbox: the build's overlay could not be mounted: No such file or directory\n$/);
  });

  test("where an overlay cannot be mounted over the store (a store on overlayfs, as in a container), builds use bind mounts and kiln says why, once", { skip: needsRoot }, async () => {
    const mnt = tempDir("overlay");
    mountOverlay(mnt, tempDir("layers"));
    try {
      const store = join(mnt, "store");
      const r = await kilnJson(["realize", "--no-link", "top"], o(store));
      assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name).filter((n) => n === "base" || n === "top"), ["base", "top"]);
      const warnings = eventsOf(r.events, "warning").map((e) => String(e.message));
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0]!, /builds see the store through bind mounts, whose host paths show in \/proc\/self\/mountinfo: an overlay cannot be mounted over this store, which is on overlayfs \(.+\); KILN_SANDBOX_VIEW=binds accepts this/);
      assert.deepEqual(readdirSync(join(store, "tmp")), [], "the probe's directory is gone");
      assert.equal((await kiln(["verify"], o(store))).code, 0);
    } finally {
      unmount(mnt);
    }
  });

  test("a recorded output missing from disk is built again (with what refers to it), never printed", async () => {
    const store = tempDir("store");
    await kilnJson(["realize", "--no-link", "top"], o(store));
    const [base] = validPaths(store, "base");
    chmodSync(hostStorePath(store, base!), 0o755);
    rmSync(hostStorePath(store, base!), { recursive: true });
    const r = await kilnJson(["realize", "--no-link", "top"], o(store));
    const [forgotten] = eventsOf(r.events, "forgotten");
    assert.deepEqual(forgotten?.missing, [base]);
    assert.equal((forgotten?.paths as unknown as string[]).length, 2, "base, and top which refers to it");
    assert.deepEqual(buildStarts(r.events).map((e) => e.node!.name), ["base", "top"]);
    const printed = r.stdout.trim();
    assert.ok(existsSync(join(printed, "copy")), `${printed} exists`);
    assert.ok(existsSync(hostStorePath(store, base!)));
    assert.equal((await kiln(["verify"], o(store))).code, 0);
  });
});

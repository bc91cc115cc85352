// Every way a store, a file system or an input can be bad (issue 14), as one table: each case runs
// kiln once and must end with its documented exit code, a message saying what and where, no
// internal error, and nothing changed outside the store and the temp dirs (a refused command
// changes nothing in the store either: its paths, its database and the database's backup stay as
// they were). Everything kiln could write besides the store (the recipe set, HOME, TMPDIR) lives
// in one test root, looked at file by file before and after each case.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { addDanglingReference, overwriteTablePage } from "../store/test-helpers/damage.js";
import { bindReadOnly, canMount, fillUp, mountTmpfs, unmount, unmountAll } from "./test-helpers/mounts.js";
import { cleanup, copyFixture, hostStorePath, kiln, kilnJson, onDisk, validPaths, type RunResult } from "./test-helpers/kiln.js";

interface Case {
  name: string;
  /** mounts or runs kiln as another user */
  root?: boolean;
  /** the --store of the case; default: a copy of the template store */
  store?: () => string;
  /** what kiln may change: the store (default), the tmpfs it is on ("mount"), or nothing (a --store that is no store) */
  owns?: "store" | "mount" | "nothing";
  /** run kiln as a user who owns none of the test's files (test-helpers/kiln.ts) */
  unprivileged?: boolean;
  /** done to the store (or the recipe set) before the snapshot */
  setup?: (store: string) => void;
  args: string[];
  code: number;
  stderr?: RegExp;
  /** a refusal: the store's paths, database and backup are left exactly as they were */
  refused?: boolean;
  /** the refusal comes after kiln took a lock in the database (a row written, then deleted): its file may differ */
  locked?: boolean;
  /** more to check of the store afterwards */
  check?: (store: string, r: RunResult) => void;
  /** undo what setup did outside the store (after the snapshot is compared) */
  teardown?: () => void;
}

describe("bad input and bad conditions: documented exit codes, nothing changed outside the store", { timeout: 600_000 }, () => {
  let top: string;
  let work: string;
  let template: string;
  let env: Record<string, string>;
  let n = 0;

  before(async () => {
    // the recipe set with the fixtures' seed beside it (../lib), both in the test root
    work = copyFixture("robust");
    top = dirname(work);
    for (const d of ["home", "tmp", "stores"]) mkdirSync(join(top, d));
    env = { HOME: join(top, "home"), TMPDIR: join(top, "tmp"), XDG_DATA_HOME: join(top, "home", ".local", "share") };
    template = join(top, "template");
    await kilnJson(["realize", "--no-link", "top"], { cwd: work, store: template, env });
    await kilnJson(["realize", "--no-link", "-p", "dev", "small"], { cwd: work, store: template, env });
    await kilnJson(["pin", "add", "keep", "small"], { cwd: work, store: template, env });
  });
  after(() => {
    unmountAll();
    cleanup();
  });

  /**
   * A fresh copy of the template store (a pin, a profile, a backup). Symlinks are copied as they
   * are: resolved, the seed's relative links (usr/bin/sh -> busybox) would point into the template.
   */
  const copyStore = () => {
    const s = join(top, "stores", `s${n++}`);
    cpSync(template, s, { recursive: true, verbatimSymlinks: true });
    return s;
  };
  /**
   * An 8 MiB tmpfs holding a copy of the template store: 5.4 MiB, most of it the fixtures' seed
   * (BusyBox's .deb, its unpacked tree, and the merged one, which the copy does not hard-link).
   */
  const storeOnTmpfs = () => {
    const mnt = join(top, "stores", `mnt${n++}`);
    mkdirSync(mnt);
    mountTmpfs(mnt, "8m");
    cpSync(template, join(mnt, "store"), { recursive: true, verbatimSymlinks: true });
    return join(mnt, "store");
  };
  const db = (s: string) => join(s, "db.sqlite");
  const lock = () => join(work, "kiln.lock");

  const cases: Case[] = [
    {
      name: "the database emptied", setup: (s) => writeFileSync(db(s), ""),
      args: ["realize", "--no-link", "small"], code: 1, stderr: /db\.sqlite is missing or empty, but .* holds \d+ store path\(s\)/, refused: true,
      // every path of the template: top, base, small, the profile generation and the seed's
      check: (s, r) => assert.match(r.stderr, new RegExp(`holds ${onDisk(s).length} store path\\(s\\)`)),
    },
    {
      name: "the database deleted", setup: (s) => rmSync(db(s)),
      args: ["gc"], code: 1, stderr: /db\.sqlite is missing or empty/, refused: true, check: (s) => assert.ok(!existsSync(db(s))),
    },
    {
      name: "a page of the database overwritten: gc", setup: (s) => overwriteTablePage(s, "valid_paths"),
      args: ["gc"], code: 1, stderr: /db\.sqlite is damaged/, refused: true, locked: true,
    },
    {
      name: "a page of the database overwritten: verify", setup: (s) => overwriteTablePage(s, "valid_paths"),
      args: ["verify"], code: 1, refused: true,
    },
    {
      name: "a reference to a path that does not exist: verify", setup: (s) => addDanglingReference(s),
      args: ["verify"], code: 1, refused: true, check: (_s, r) => assert.match(r.stdout, /DAMAGED .*refer to rows that do not exist/),
    },
    {
      name: "the database is not a database", setup: (s) => writeFileSync(db(s), Buffer.alloc(8192, 0x5a)),
      args: ["realize", "--no-link", "small"], code: 1, stderr: /db\.sqlite is damaged \(file is not a database\)/, refused: true,
    },
    {
      name: "the database file on a read-only mount", root: true, setup: (s) => bindReadOnly(db(s)),
      args: ["realize", "--no-link", "base"], code: 1, stderr: /db\.sqlite cannot be written \(attempt to write a readonly database\)/, refused: true,
      check: (s) => unmount(db(s)),
    },
    {
      name: "the store's file system full", root: true, store: storeOnTmpfs, owns: "mount", setup: (s) => fillUp(join(s, "..", "filler")),
      args: ["pin", "add", "p", "small"], code: 1, stderr: /no space left on device: the store database .*db\.sqlite could not be written/, refused: true,
    },
    {
      name: "a build fills the disk", root: true, store: storeOnTmpfs, owns: "mount",
      args: ["realize", "--no-link", "fill"], code: 1, stderr: /builder for fill .*no space left on device/,
      check: (s) => {
        assert.deepEqual(readdirSync(join(s, "tmp")), []);
        assert.deepEqual(validPaths(s, "fill"), []);
        assert.ok(!onDisk(s).some((p) => p.endsWith("-fill")));
      },
    },
    {
      name: "kiln.lock truncated: realize --locked", setup: () => writeFileSync(lock(), '{\n  "version": 1,\n  "recipes": {'),
      args: ["realize", "--no-link", "--locked", "small"], code: 2, stderr: /kiln\.lock:3:15 is not a valid kiln\.lock/, refused: true, teardown: () => rmSync(lock()),
    },
    {
      name: "kiln.lock truncated: lock --check", setup: () => writeFileSync(lock(), '{\n  "version": 1,\n  "recipes": {'),
      args: ["lock", "--check"], code: 2, stderr: /kiln\.lock:3:15 is not a valid kiln\.lock/, refused: true, teardown: () => rmSync(lock()),
    },
    {
      name: "--store is a file", owns: "nothing", store: () => {
        const f = join(top, "stores", `file${n++}`);
        writeFileSync(f, "not a store");
        return f;
      },
      args: ["realize", "--no-link", "small"], code: 2, stderr: /cannot be used: it is a file, not a directory/,
    },
    {
      name: "--store on a read-only mount", root: true, store: () => {
        const d = copyStore();
        bindReadOnly(d);
        return d;
      },
      args: ["realize", "--no-link", "small"], code: 2, stderr: /cannot be used: it is on a read-only file system/, refused: true, check: (s) => unmount(s),
    },
    {
      name: "--store not writable by the user", root: true, owns: "nothing", unprivileged: true, store: () => {
        // another user's private folder
        const d = join(top, "stores", `closed${n++}`);
        mkdirSync(d, { mode: 0o700 });
        chmodSync(d, 0o700);
        chownSync(d, 65534, 65534);
        return join(d, "store");
      },
      args: ["realize", "--no-link", "small"], code: 2, stderr: /cannot be used: permission denied/,
    },
    {
      name: "an env value of 300 KiB",
      args: ["-f", "recipes/big-env.ts", "realize", "--no-link", "bigEnv"], code: 2, stderr: /env HUGE is 300\.0 KiB; the kernel starts no program/, refused: true,
    },
    {
      name: "a recipe set that does not exist",
      args: ["-f", "recipes/nope.ts", "realize", "--no-link", "small"], code: 2, refused: true,
    },
    {
      name: "a recorded output missing from disk",
      setup: (s) => {
        const p = hostStorePath(s, validPaths(s, "top")[0]!);
        chmodSync(p, 0o755);
        rmSync(p, { recursive: true });
      },
      args: ["realize", "--no-link", "top"], code: 0,
      check: (s, r) => {
        const printed = r.stdout.trim();
        assert.equal(printed, hostStorePath(s, validPaths(s, "top")[0]!));
        assert.ok(existsSync(join(printed, "copy")), `${printed} is on disk`);
      },
    },
  ];

  for (const c of cases) {
    test(c.name, { skip: c.root && !canMount ? "needs root (mounts, or another user)" : false }, async () => {
      const store = (c.store ?? copyStore)();
      c.setup?.(store);
      const skip = [join(top, "tmp"), ...(c.owns === "nothing" ? [] : [c.owns === "mount" ? dirname(store) : store])];
      const outside = snapshot(top, skip);
      const inside = c.refused ? storeState(store, !c.locked) : undefined;
      const r = await kiln(c.args, { cwd: work, store, env, unprivileged: c.unprivileged });
      assert.equal(r.code, c.code, `exit code of kiln ${c.args.join(" ")}\n${r.stdout}\n${r.stderr}`);
      if (c.stderr) assert.match(r.stderr, c.stderr);
      assert.doesNotMatch(r.stderr, /internal error/);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
      // what is wrong, then what to do: an error and its hint, or verify's report and its advice
      if (c.code !== 0 && c.args[0] === "verify") assert.match(r.stdout + r.stderr, /kiln verify --repair/);
      else if (c.code !== 0) assert.match(r.stderr, /^error: .*\n {2}hint: /m, "an error and a hint");
      if (inside) assert.deepEqual(storeState(store, !c.locked), inside, "the store is as it was");
      c.check?.(store, r);
      assert.deepEqual(snapshot(top, skip), outside, "nothing outside the store and the temp dirs changed");
      c.teardown?.();
    });
  }
});

/** Every entry under `root` but those under `skip`: path -> type, size, mode, mtime, link target. */
function snapshot(root: string, skip: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    if (skip.some((s) => p === s || p.startsWith(s + "/"))) return;
    const st = lstatSync(p);
    const kind = st.isSymbolicLink() ? `link:${readlinkSync(p)}` : st.isDirectory() ? "dir" : "file";
    out[relative(root, p) || "."] = `${kind} ${st.size} ${st.mode.toString(8)} ${st.mtimeMs}`;
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  walk(root);
  return out;
}

/** What a refused command must leave alone: the store's paths, its database (withDb) and its backup, by content. */
function storeState(store: string, withDb: boolean): Record<string, string> {
  const digest = (f: string) => (existsSync(f) && lstatSync(f).isFile() ? createHash("sha256").update(readFileSync(f)).digest("hex") : "none");
  let paths: string[] = [];
  try {
    paths = onDisk(store);
  } catch {
    /* no store directory */
  }
  return { paths: paths.join(" "), ...(withDb ? { db: digest(join(store, "db.sqlite")) } : {}), backup: digest(join(store, "db.backup.sqlite")) };
}

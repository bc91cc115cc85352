// Failures end to end (fixtures/failing): exit codes, what the user is told, and what does or
// does not get built around a failure.
import assert from "node:assert/strict";
import { chmodSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { buildRows, buildStarts, cleanup, copyFixture, eventsOf, isSeedNode, kiln, query, realizeSeed, tempDir, withoutSeed } from "./test-helpers/kiln.js";

const helper = fileURLToPath(new URL("../dist/kiln-sandbox", import.meta.url));

describe("failures", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;
  const o = (env?: Record<string, string>) => ({ cwd, store, ...(env ? { env } : {}) });

  // the fixture is only read; every test gets its own store, so each can run alone
  before(() => {
    cwd = copyFixture("failing");
  });
  beforeEach(() => {
    store = tempDir("store");
  });
  after(cleanup);

  test("without a sandbox kiln refuses to build: SANDBOX_UNAVAILABLE with the apt-get hint, nothing built", async () => {
    // bubblewrap missing, on the way that needs it (bind mounts: kiln's own sandbox server does not)
    const r = await kiln(["realize", "--json", "independent"], o({ KILN_BWRAP: "/nonexistent/bwrap", KILN_SANDBOX_VIEW: "binds" }));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /bubblewrap \(\/nonexistent\/bwrap\) is not installed; kiln never builds without a sandbox/);
    assert.match(r.stderr, /apt-get install bubblewrap/);
    const summary = JSON.parse(r.stdout) as { built: number; failed: Array<{ code: string }> };
    assert.deepEqual(summary.failed.map((f) => f.code), ["SANDBOX_UNAVAILABLE"]);
    assert.deepEqual(buildRows(store), [], "no builder was started, not even a builtin one");
    // only the seed's .deb came in: a fixed-output fetch runs inside kiln and needs no sandbox
    const fetched = query<{ path: string }>(store, "SELECT path FROM valid_paths").map((p) => p.path.slice(33));
    assert.equal(fetched.length, 1);
    assert.ok(isSeedNode(fetched[0]!) && fetched[0]!.startsWith("busybox-static_") && fetched[0]!.endsWith(".deb"), fetched[0]);
    assert.equal(summary.built, fetched.length);
  });

  test("kiln's own sandbox needs no bubblewrap: with it missing, builds still run in a sandbox", { skip: existsSync(helper) ? false : "dist/kiln-sandbox was not built (no C compiler)" }, async () => {
    const r = await kiln(["realize", "--json", "independent"], o({ KILN_BWRAP: "/nonexistent/bwrap" }));
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { built: number; failed: unknown[] };
    assert.deepEqual(summary.failed, []);
    assert.ok(buildRows(store).length > 0, "builds ran");
  });

  test("a missing host tool: exit 2, and the message names the tool", async () => {
    const r = await kiln(["realize", "missingTool"], o());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /host tool 'definitely-not-a-tool' is not installed/);
    assert.match(r.stderr, /declared by missing-tool/);
    assert.deepEqual(buildRows(store, "missing-tool"), []);
  });

  test("a host tool found where the sandbox shows nothing (not under /usr): exit 2 at evaluation, naming it and where", async () => {
    const bin = tempDir("hidden-bin");
    const tool = join(bin, "kiln-test-hidden-tool");
    writeFileSync(tool, "#!/bin/sh\necho made by a hidden tool\n");
    chmodSync(tool, 0o755);
    const r = await kiln(["realize", "hiddenTool"], o({ PATH: `${bin}:${process.env.PATH}` }));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`host tool 'kiln-test-hidden-tool' was found at ${tool}, which a build cannot see`));
    assert.match(r.stderr, /declared by hidden-tool/);
    assert.match(r.stderr, /hint: take the tool from the build's usr tree/);
    assert.deepEqual(buildRows(store), [], "refused before anything was built");
  });

  test("a failing build: exit 1, the log tail on stderr, the build recorded as failed with its exit code", async () => {
    const r = await kiln(["realize", "fails"], o());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FAILED +fails: builder for fails exited with code 3/);
    for (const line of ["compiling step one", "warning: something odd", "fatal: the build broke here"]) {
      assert.match(r.stderr, new RegExp(`\\| ${line}`), `log tail shows ${line}`);
    }
    assert.match(r.stderr, /kiln log fails/);
    const rows = buildRows(store, "fails");
    assert.deepEqual(rows.map((b) => [b.status, b.exit_code]), [["failed", 3]]);
    assert.deepEqual(query(store, "SELECT path FROM valid_paths WHERE path LIKE '%-fails'"), []);
    assert.deepEqual(readdirSync(join(store, "tmp")), [], "the scratch directory is removed");
    const log = await kiln(["log", "fails"], o());
    assert.equal(log.code, 0);
    assert.equal(log.stdout, "compiling step one\nwarning: something odd\nfatal: the build broke here\n");
  });

  test("without --keep-going the run stops at the first failure", async () => {
    // -j1, one slot: indep-base (head of the longer chain) goes first, then fails (it asked before
    // independent, which becomes ready only when indep-base is done); after the failure nothing starts
    const r = await kiln(["--reporter", "json", "realize", "-j", "1", "fails", "independent"], o());
    assert.equal(r.code, 1);
    const starts = buildStarts(r.events).map((e) => e.node!.name);
    assert.equal(starts.at(-1), "fails", `nothing started after the failure: ${starts.join(" ")}`);
    assert.ok(!starts.includes("independent"));
    assert.deepEqual(buildRows(store, "independent"), []);
  });

  test("with --keep-going an independent derivation still gets built, the dependent one is skipped", async () => {
    const r = await kiln(["--reporter", "json", "realize", "-j", "1", "--keep-going", "--json", "fails", "dependent", "independent"], o());
    assert.equal(r.code, 1);
    assert.deepEqual(buildStarts(withoutSeed(r.events)).map((e) => e.node!.name).sort(), ["fails", "indep-base", "independent"]);
    assert.deepEqual(buildRows(store, "indep-base").map((b) => b.status), ["built"]);
    assert.deepEqual(eventsOf(r.events, "skipped").map((e) => [e.node!.name, (e.because as { name: string }).name]), [["dependent", "fails"]]);
    assert.deepEqual(buildRows(store, "independent").map((b) => b.status), ["built"]);
    assert.deepEqual(buildRows(store, "dependent"), []);
    const summary = JSON.parse(r.stdout) as { outputs: Array<{ target: string }>; failed: Array<{ name: string; code: string }> };
    assert.deepEqual(summary.outputs.map((x) => x.target), ["independent"]);
    assert.deepEqual(summary.failed.map((f) => [f.name, f.code]), [["fails", "BUILD_FAILED"]]);
  });

  test("a node skipped because its input was skipped names the failure behind it; the summary counts the skips", async () => {
    // the seed first, so that the summary counts the fixture's own nodes as built, failed or skipped
    await realizeSeed("busybox", o());
    const r = await kiln(["--reporter", "plain", "realize", "--no-link", "--keep-going", "dependentToo"], o());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /skipped  dependent: input fails failed\n/);
    assert.match(r.stderr, /skipped  dependent-too: input dependent was skipped \(fails failed\)\n/);
    assert.match(r.stderr, /done: 0 built, \d+ from the store, 1 failed, 2 skipped in /);
    const j = await kiln(["--reporter", "json", "realize", "--no-link", "--keep-going", "dependentToo"], o());
    assert.deepEqual(eventsOf(j.events, "skipped").map((e) => [e.node!.name, (e.because as { name: string }).name, (e.failed as { name: string }).name]),
      [["dependent", "fails", "fails"], ["dependent-too", "dependent", "fails"]]);
  });

  test("an unknown target: exit 2 with the available targets", async () => {
    const r = await kiln(["realize", "nope"], o());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no target 'nope'/);
    assert.match(r.stderr, /available here: .*fails/);
  });
});

// kiln run and kiln shell on fixtures/run: an output whose interpreter and exec'd program are other
// store paths fails on the host as it is, and runs under kiln run / kiln shell, in the user's
// directory with the user's HOME, its exit status passed through.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { hostView } from "../engine/host-view.js";
import { buildStarts, cleanup, copyFixture, kiln, kilnJson, query, tempDir, validPaths, withoutSeed } from "./test-helpers/kiln.js";

after(cleanup);

describe("kiln run and kiln shell", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;
  let home: string;
  let sub: string;
  const o = () => ({ cwd: sub, store, env: { HOME: home } });

  before(() => {
    cwd = copyFixture("run");
    store = tempDir("store");
    home = tempDir("home");
    sub = join(cwd, "somewhere", "deeper");
    mkdirSync(sub, { recursive: true });
  });

  test("the output as built does not run on the host: its interpreter is a store path", async () => {
    const r = await kilnJson(["realize", "--no-link", "app"], { cwd, store });
    const app = join(r.stdout.trim(), "bin", "app");
    const direct = spawnSync(app, ["x"], { encoding: "utf8" });
    assert.ok(direct.status !== 0 || direct.error, `ran directly: ${direct.stdout}`);
    assert.match(String(direct.error?.message ?? direct.stderr), /ENOENT|not found/);
  });

  test("kiln run: the program runs, in the user's directory and HOME, with its arguments", async () => {
    // in the store before: then kiln has nothing of its own to say
    await kilnJson(["realize", "--no-link", "app"], { cwd, store });
    const r = await kiln(["run", "app", "--", "one", "two words", "--flag"], o());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `app in ${sub} with HOME=${home}\ntool ran: from-app one two words --flag\n`);
    assert.equal(r.stderr, "", "nothing of kiln's own when the target is in the store");
  });

  test("kiln run realizes a target that is not in the store first", async () => {
    const fresh = tempDir("store");
    const r = await kiln(["--reporter", "json", "run", "tool", "--", "hi"], { ...o(), store: fresh });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "tool ran: hi\n", "bin/tool: the program named like the target");
    // tool, and the seed it is built on (a fresh store has neither)
    assert.deepEqual(buildStarts(withoutSeed(r.events)).map((e) => e.node!.name), ["tool"]);
    assert.equal(validPaths(fresh, "tool").length, 1);
    assert.deepEqual(query(fresh, "SELECT target FROM target_realisations"), [{ target: "tool" }], "recorded for kiln why, as a realize records it");
  });

  test("kiln shell: the targets' programs on PATH; the command's exit status is kiln's", async () => {
    const r = await kiln(["shell", "app", "tool", "--", "sh", "-c", "command -v app; command -v tool; app z; exit 7"], o());
    assert.equal(r.code, 7, r.stderr);
    const [appPath, toolPath, ...rest] = r.stdout.split("\n");
    assert.match(appPath!, /^\/kiln\/store\/[0-9a-z]{32}-app\/bin\/app$/);
    assert.match(toolPath!, /^\/kiln\/store\/[0-9a-z]{32}-tool\/bin\/tool$/);
    assert.deepEqual(rest, [`app in ${sub} with HOME=${home}`, "tool ran: from-app z", ""]);
  });

  test("a target with nothing to run: exit 2 and what to do instead", async () => {
    const r = await kiln(["run", "data"], o());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /data is a file, not a program[\s\S]*hint: run something with it: kiln shell data -- <command>/);
  });
});

test("hostView: a store already at /kiln/store runs the command as it is; elsewhere the store is bound there, the rest of the host in place", () => {
  assert.deepEqual(hostView({ bwrap: "bwrap", storeDir: "/kiln/store", cwd: "/home/me", command: ["/kiln/store/x-app/bin/app", "a"] }),
    { argv: ["/kiln/store/x-app/bin/app", "a"], namespace: false });
  const v = hostView({ bwrap: "bwrap", storeDir: "/var/kiln/store", cwd: "/home/me", command: ["app"] });
  assert.equal(v.namespace, true);
  const a = v.argv.join(" ");
  assert.match(a, /^bwrap --unshare-user --die-with-parent /);
  assert.match(a, / --dev-bind \/usr \/usr /);
  assert.match(a, / --dev-bind \/tmp \/tmp /);
  assert.match(a, / --ro-bind \/var\/kiln\/store \/kiln\/store --chdir \/home\/me -- app$/);
});

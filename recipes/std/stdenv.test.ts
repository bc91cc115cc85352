// The stdenv (stdenv.ts), realized on the small packages of fixtures/stdenv in a store of its own:
// phases in order with their hooks, a patch, dependencies found through the environment only,
// layouts, a cross build through a toolchain's prefixed tools, a failing phase named in the log,
// and system trees merged (with their links) or refused on a conflict.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { buildRows, cleanup, kilnJson, REPO, SEED_DEB_CACHE, tempDir } from "../../cli/test-helpers/kiln.js";
import { toParts, type Value } from "../../engine/api.js";
import { seed } from "./seed.js";
import { packageScript, PHASES, pkg } from "./stdenv.js";

const RECIPES = join(REPO, "fixtures", "stdenv", "recipes", "index.ts");

describe("stdenv", { timeout: 20 * 60_000 }, () => {
  const store = join(tempDir("store"), "kiln-store");
  const env = { KILN_MIRRORS: SEED_DEB_CACHE };
  after(cleanup);

  async function realize(target: string): Promise<string> {
    const r = await kilnJson(["realize", "--no-link", "--json", "-f", RECIPES, target], { cwd: REPO, store, env });
    return (JSON.parse(r.stdout) as { outputs: Array<{ path: string }> }).outputs[0]!.path;
  }

  const logOf = (name: string) => readFileSync(buildRows(store, name).find((b) => b.status === "built" || b.status === "failed")!.log_file!, "utf8");

  test("a system-layout package: patched, configured for /usr, dependencies from the environment, checked, installed under DESTDIR, fixed up", async () => {
    const out = await realize("greet");
    // installed as a system tree, nothing outside usr/
    assert.ok(existsSync(join(out, "usr", "bin", "greet")));
    // the patch applied and the store-layout library linked without a -I or -L in the Makefile
    assert.equal(spawnSync(join(out, "usr", "bin", "greet"), { encoding: "utf8" }).stdout, "HELLO, PATCHED\n");
    const config = readFileSync(join(out, "usr", "share", "greet", "config.txt"), "utf8");
    assert.match(config, /^configure: --prefix=\/usr --build=x86_64-pc-linux-gnu --host=x86_64-pc-linux-gnu --enable-shouting$/m);
    assert.match(config, /^CC: gcc$/m, "a native build leaves CC to configure");
    assert.match(config, /^CPATH: \/kiln\/store\/[0-9a-z]{32}-shout-1\/include$/m, "a native build gets its deps' headers");
    assert.equal(readFileSync(join(out, "usr", "share", "greet", "hooks.txt"), "utf8"), "pre build ran\n");
    // fixup: no libtool archives, no info index
    assert.ok(!existsSync(join(out, "usr", "lib", "libgreet.la")), "the .la file is removed");
    assert.ok(!existsSync(join(out, "usr", "share", "info", "dir")), "info's dir is removed");
    const phases = logOf("greet-1.0").split("\n").filter((l) => l.startsWith("== ")).map((l) => l.slice(3));
    assert.deepEqual(phases, [...PHASES], "every phase ran, in order");
  });

  test("a cross build: --host given, the toolchain's prefixed compiler used, no build-machine headers", async () => {
    const out = await realize("crossGreet");
    const config = readFileSync(join(out, "usr", "share", "greet", "config.txt"), "utf8");
    assert.match(config, /--host=x86_64-fake-linux-gnu/);
    assert.match(config, /^CC: x86_64-fake-linux-gnu-gcc$/m);
    assert.match(config, /^CPATH: unset$/m, "a cross build's deps give tools only: their headers are the build machine's");
    assert.equal(spawnSync(join(out, "usr", "bin", "greet"), { encoding: "utf8" }).stdout, "built by the fake cross compiler\nHELLO, PATCHED\n");
  });

  test("a failing check fails the build, and the log's last phase line says which", async () => {
    await kilnJson(["realize", "--no-link", "-f", RECIPES, "greetCheckFails"], { cwd: REPO, store, env }, 1);
    const phases = logOf("greet-check-fails-1.0").split("\n").filter((l) => l.startsWith("== "));
    assert.equal(phases.at(-1), "== check");
    assert.ok(!phases.includes("== patch"), "no patches, no patch phase");
  });

  test("rootTree merges system trees with their links, and refuses two different files at one path", async () => {
    const out = await realize("root");
    assert.equal(readlinkSync(join(out, "usr", "bin", "hi")), "greet");
    assert.equal(readFileSync(join(out, "usr", "share", "greet", "motd"), "utf8"), "welcome\n");
    assert.ok(existsSync(join(out, "usr", "share", "greet", "config.txt")));
    await kilnJson(["realize", "--no-link", "-f", RECIPES, "conflicting"], { cwd: REPO, store, env }, 1);
    assert.match(logOf("greet-conflict"), /usr\/share\/greet\/config\.txt: greet, other-config/);
  });

  test("a package with its own usr tree builds on that tree, not on the seed's base; usr and seed together are refused", async () => {
    const out = await realize("onTree");
    assert.equal(readFileSync(join(out, "autoreconf"), "utf8"), "/usr/bin/autoreconf\n", "the tree given (base+autotools) is the build's /usr");
    assert.equal(readFileSync(join(out, "python3"), "utf8"), "none\n", "nothing of another set");
    assert.throws(() => pkg({ name: "both", version: "1", src: "/src.tar", usr: seed("base"), seed: ["python"] }),
      /package both: `usr` replaces the seed, so `seed: \[python\]` cannot be given with it/);
  });

  test("a package's position is the recipe line that made it, not the stdenv's (kiln why points there)", async () => {
    const r = await kilnJson(["show-derivation", "-f", RECIPES, "greet"], { cwd: REPO, store, env });
    const [d] = Object.values(JSON.parse(r.stdout) as Record<string, { meta: { position: string } }>);
    assert.match(d!.meta.position, /fixtures\/stdenv\/recipes\/index\.ts:\d+:\d+$/);
  });

  test("the script: a replaced phase replaces, an empty one is left out, hooks surround", () => {
    const text = (v: Value): string => toParts(v).map((p) => (typeof p === "string" ? p : "<path>")).join("");
    const s = text(packageScript({ name: "x", version: "1", src: "/src.tar", phases: { build: "my-build", check: "" }, pre: { install: "before-install" }, post: { install: "after-install" } }));
    assert.ok(s.includes("my-build") && !s.includes('make -j"$KILN_BUILD_CORES"  \n'), "the build phase is replaced");
    assert.ok(!s.includes("== check"), "an empty phase is left out");
    const i = s.indexOf("== install");
    assert.ok(i > 0 && s.indexOf("before-install") > i && s.indexOf("make ") < s.indexOf("after-install", i) && s.indexOf("before-install") < s.indexOf("after-install"));
    assert.match(s, /--prefix=\$out /, "the store layout installs to $out");
  });
});

// BlazeNeuro's toolchain stages, the fast part (the normal suite): the derivation hashes of every
// stage pinned, and the graph's shape checked: which stage builds with which, every build on the
// seed or on BlazeNeuro's own trees, none declaring host tools. The builds themselves (hours) are
// the toolchain tier: blazeneuro.toolchain.test.ts, `npm run test:toolchain`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { LRUCache } from "lru-cache";
import { Evaluator, type Node } from "../../engine/evaluate.js";
import { listTargetTree, loadRecipeSet, selectTarget } from "../../engine/loader.js";
import { reachable } from "../../engine/graph.js";
import { REPO, tempDir } from "../../cli/test-helpers/kiln.js";
import { assertGolden, stubHostTools } from "../../engine/test-helpers/golden.js";

const RECIPES = join(REPO, "recipes");
const GOLDEN = join(REPO, "fixtures", "golden", "blazeneuro.json");
const GOLDEN_TARGETS = join(REPO, "fixtures", "golden", "blazeneuro-targets.json");

async function graph(): Promise<{ nodes: Node[]; byName: (n: string) => Node }> {
  const set = await loadRecipeSet(join(RECIPES, "index.ts"), tempDir("eval-cache"));
  const ev = new Evaluator({ hostTools: stubHostTools().hostTools, fileCache: new LRUCache({ max: 1000 }) });
  const roots = ["blazeneuro.temporary.tests.hello", "blazeneuro.toolchain"].flatMap((t) => selectTarget(set, t)).map((t) => ev.evaluate(t.value).node);
  const nodes = reachable(ev.graph, roots);
  return {
    nodes,
    byName: (n) => {
      const found = nodes.filter((x) => x.name === n);
      assert.equal(found.length, 1, `one node named ${n}`);
      return found[0]!;
    },
  };
}

/** The recipe set and an evaluator: `node(target)` evaluates one target. */
async function targets() {
  const set = await loadRecipeSet(join(RECIPES, "index.ts"), tempDir("eval-cache"));
  const ev = new Evaluator({ hostTools: stubHostTools().hostTools, fileCache: new LRUCache({ max: 1000 }) });
  return { set, ev, node: (t: string) => ev.evaluate(selectTarget(set, t)[0]!.value).node };
}

describe("BlazeNeuro toolchain recipes", () => {
  test("evaluation goldens: the derivation hashes of every stage are pinned", async () => {
    const { nodes } = await graph();
    const got: Record<string, string> = {};
    for (const n of nodes) got[n.name] = n.hash;
    assertGolden(GOLDEN, got, "a BlazeNeuro derivation");
  });

  test("each stage builds with the one before it", async () => {
    const { byName } = await graph();
    const deps = (n: string) => byName(n).deps.map((d) => d.name);
    assert.ok(deps("gcc-pass1-12.2.0").includes("binutils-pass1-2.40"));
    assert.ok(deps("glibc-2.36").includes("gcc-pass1-12.2.0") && deps("glibc-2.36").includes("linux-api-headers-6.1"));
    assert.ok(deps("libstdc++-12.2.0").includes("blazeneuro-cross-c"), "libstdc++ is built by the cross compiler with glibc's sysroot");
    assert.deepEqual(deps("blazeneuro-sysroot").sort(), ["glibc-2.36", "libstdc++-12.2.0", "linux-api-headers-6.1"]);
    for (const p of ["m4-1.4.19", "bash-5.2.15", "coreutils-9.1", "binutils-pass2-2.40", "gcc-pass2-12.2.0"]) {
      assert.ok(deps(p).includes("blazeneuro-cross"), `${p} is built with the cross toolchain`);
      assert.ok(!deps(p).includes("gcc-pass1-12.2.0"), `${p} reaches gcc pass 1 only through the toolchain`);
    }
  });

  test("nothing of the host: every build runs on the seed or on BlazeNeuro's own trees, and the proof on the temporary system alone", async () => {
    const { nodes, byName } = await graph();
    for (const n of nodes) {
      assert.deepEqual(n.drv.hostTools, {}, `${n.name} declares no host tools`);
      if (n.kind === "build" && !n.drv.builder.startsWith("builtin:")) assert.ok(n.drv.usr, `${n.name} runs on a usr tree`);
    }
    // and from stage 4 to the boot tests
    const t = await targets();
    const later = reachable(t.ev.graph, [t.node("blazeneuro.report")]);
    for (const n of later) {
      assert.deepEqual(n.drv.hostTools, {}, `${n.name} declares no host tools`);
      if (n.kind === "build" && !n.drv.builder.startsWith("builtin:")) assert.ok(n.drv.usr, `${n.name} runs on a usr tree`);
    }
    const hello = byName("blazeneuro-hello");
    assert.match(hello.drv.usr!, /-blazeneuro-temporary-system$/, "the proof's /usr is the temporary system, no seed");
  });

  test("kiln targets lists the stages under blazeneuro.toolchain and blazeneuro.temporary, each with its derivation", async () => {
    const set = await loadRecipeSet(join(RECIPES, "index.ts"), tempDir("eval-cache"));
    assert.deepEqual(listTargetTree(set, "blazeneuro.toolchain").map((r) => `${r.target} ${r.name}`), [
      "blazeneuro.toolchain blazeneuro-cross",
      "blazeneuro.toolchain.binutils-pass1 binutils-pass1-2.40",
      "blazeneuro.toolchain.gcc-pass1 gcc-pass1-12.2.0",
      "blazeneuro.toolchain.glibc glibc-2.36",
      "blazeneuro.toolchain.libstdc++ libstdc++-12.2.0",
      "blazeneuro.toolchain.linux-api-headers linux-api-headers-6.1",
      "blazeneuro.toolchain.sysroot blazeneuro-sysroot",
    ]);
    const temporary = listTargetTree(set, "blazeneuro.temporary").map((r) => r.target);
    assert.equal(temporary.length, 1 + 17 + 1, "the tree, its 17 packages, the proof");
    assert.ok(temporary.includes("blazeneuro.temporary.tests.hello") && temporary.includes("blazeneuro.temporary.gcc-pass2"));
    assert.throws(() => listTargetTree(set, "blazeneuro.toolchian"), (e: Error & { hint?: string }) =>
      /no target 'blazeneuro\.toolchian'/.test(e.message) && e.hint === "available here: grub, kernel, partitions, report, system, temporary, tests, toolchain");
  });

  test("evaluation goldens: every target under blazeneuro (final system, kernel, image, boot tests) is pinned", async () => {
    const { set, node } = await targets();
    const got: Record<string, string> = {};
    for (const t of listTargetTree(set, "blazeneuro")) {
      if (/^blazeneuro\.(toolchain|temporary)\b/.test(t.target)) continue; // pinned by name above
      got[t.target] = node(t.target).hash;
    }
    assertGolden(GOLDEN_TARGETS, got, "a BlazeNeuro derivation");
  });

  test("the final system builds on the temporary system alone, and the image and its boot tests on it", async () => {
    const { set, ev, node } = await targets();
    const temporarySystem = node("blazeneuro.temporary");
    const finalPackages = listTargetTree(set, "blazeneuro.system").map((r) => r.target).filter((t) => t !== "blazeneuro.system");
    assert.equal(finalPackages.length, 23, `the final packages and init: ${finalPackages.join(" ")}`);
    for (const t of finalPackages) {
      const n = node(t);
      const usr = n.deps.find((d) => n.drv.usr?.endsWith(`-${d.name}`));
      assert.ok(usr, `${t} has a usr tree among its inputs`);
      assert.match(usr!.name, /^blazeneuro-temporary-system/, `${t} builds on the temporary system (LFS's chroot), not the seed`);
      assert.ok(!n.deps.some((d) => d.name === "blazeneuro-cross" || d.name.startsWith("seed-")), `${t} uses neither the cross toolchain nor the seed`);
      if (t === "blazeneuro.system.e2fsprogs") {
        assert.ok(usr!.deps.some((d) => d.name === "util-linux-2.38.1"), "e2fsprogs builds with util-linux's libblkid");
        assert.ok(usr!.deps.some((d) => d.name === "pkgconf-1.8.1"), "and finds it with the system's own pkg-config");
      }
      else if (t === "blazeneuro.system.binutils") {
        for (const p of ["flex-2.6.4", "bison-3.8.2"]) assert.ok(usr!.deps.some((d) => d.name === p), `binutils builds with the system's own ${p}`);
      } else assert.equal(usr!.hash, temporarySystem.hash, `${t} builds on the temporary system itself`);
    }
    const stripped = node("blazeneuro.system");
    const rootfs = stripped.deps.find((d) => d.name === "blazeneuro-rootfs-unstripped");
    assert.ok(rootfs, "the root is the merged tree, stripped");
    for (const p of ["glibc-2.36", "linux-api-headers-6.1", "blazeneuro-init", "blazeneuro-etc", "util-linux-2.38.1", "pkgconf-1.8.1", "e2fsprogs-1.47.0", "gcc-12.2.0", "flex-2.6.4", "bison-3.8.2"]) {
      assert.ok(rootfs!.deps.some((d) => d.name === p), `the root tree has ${p}`);
    }
    assert.ok(!rootfs!.deps.some((d) => d.name.startsWith("seed-") || /pass[12]/.test(d.name)), "no seed tree and no temporary tool in the root");
    const kernel = node("blazeneuro.kernel");
    assert.ok(kernel.deps.some((d) => d.name === "blazeneuro-cross"), "the kernel is built with BlazeNeuro's cross toolchain");
    const image = node("blazeneuro");
    const inputs = reachable(ev.graph, [image]).map((n) => n.name);
    for (const p of ["blazeneuro-esp.vfat", "blazeneuro-root.ext4", "blazeneuro-grub", "linux-blazeneuro", "blazeneuro-rootfs"]) assert.ok(inputs.includes(p), `the image is made from ${p}`);
    for (const p of ["esp", "root"]) assert.ok(image.deps.some((d) => d.hash === node(`blazeneuro.partitions.${p}`).hash), `blazeneuro.partitions.${p} is the image's own partition`);
    for (const [t, fw] of [["bios", "bios"], ["uefi", "uefi"], ["persistence", "bios"]] as const) {
      const b = node(`blazeneuro.tests.${t}`);
      assert.ok(b.deps.some((d) => d.hash === image.hash), `tests.${t} boots the image`);
      assert.equal(b.drv.env.FIRMWARE, fw);
      assert.equal(b.drv.env.BOOTS, t === "persistence" ? "2" : "1");
    }
  });
});

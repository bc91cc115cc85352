import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { blake3Hex } from "../store/digest.js";
import { KilnError } from "../store/errors.js";
import { derivation } from "./api.js";
import { Evaluator } from "./evaluate.js";
import { HostTools, type HostToolCache } from "./hosttools.js";

const root = mkdtempSync(join(tmpdir(), "kiln-hosttools-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** the tools these tests write live in a temporary directory: let the checks see it as the sandbox sees /usr */
const VISIBLE = [root];

function toolDir(script: string): { dir: string; tool: string } {
  const dir = join(root, `bin${n++}`);
  mkdirSync(dir);
  const tool = join(dir, "mytool");
  writeFileSync(tool, script);
  chmodSync(tool, 0o755);
  return { dir, tool };
}

function mapCache(): HostToolCache & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get: (k) => map.get(k), put: (k, v) => void map.set(k, v) };
}

describe("HostTools fingerprints", () => {
  test("a command is found on the search path (first directory wins) and fingerprinted by its content", () => {
    const { dir, tool } = toolDir("#!/bin/sh\necho one\n");
    const later = toolDir("#!/bin/sh\necho shadowed\n");
    const fp = new HostTools([join(root, "nonexistent"), dir, later.dir], undefined, VISIBLE).fingerprint("mytool");
    assert.equal(fp.path, tool);
    assert.equal(fp.digest, blake3Hex("#!/bin/sh\necho one\n"));
    assert.deepEqual(fp.commands, { mytool: tool });
    assert.equal(fp.package, null, "not owned by a Debian package");
  });

  test("the fingerprint digest, and the hash of a derivation declaring the tool, change with the script's content", () => {
    const { dir, tool } = toolDir("#!/bin/sh\necho one\n");
    // builder (not script) so that mytool is the only declared tool
    const recipe = () => derivation({ name: "uses-mytool", builder: "mytool", args: ["--out"] });
    const evaluate = () => new Evaluator({ hostTools: new HostTools([dir], undefined, VISIBLE), fileCache: new Map() }).evaluate(recipe()).node;
    const n1 = evaluate();
    writeFileSync(tool, "#!/bin/sh\necho two, a different tool\n");
    const n2 = evaluate();
    assert.equal(n1.drv.hostTools.mytool?.digest, blake3Hex("#!/bin/sh\necho one\n"));
    assert.equal(n2.drv.hostTools.mytool?.digest, blake3Hex("#!/bin/sh\necho two, a different tool\n"));
    assert.notEqual(n1.hash, n2.hash);
    assert.deepEqual({ ...n1.drv, hostTools: {} }, { ...n2.drv, hostTools: {} }, "nothing else differs");
  });

  test("a persistent fingerprint cache is reused while the binary is unchanged and invalidated when it changes", () => {
    const { dir, tool } = toolDir("#!/bin/sh\necho cached\n");
    const cache = mapCache();
    const fp1 = new HostTools([dir], cache, VISIBLE).fingerprint("mytool");
    assert.equal(cache.map.size, 1);
    // poison the cached digest: a second HostTools must serve it from the cache (proves the cache is read)
    const [key, json] = [...cache.map][0]!;
    cache.map.set(key, json.replace(fp1.digest, "c".repeat(64)));
    assert.equal(new HostTools([dir], cache, VISIBLE).fingerprint("mytool").digest, "c".repeat(64));
    // a changed binary (size and mtime differ) is fingerprinted again
    writeFileSync(tool, "#!/bin/sh\necho changed content\n");
    const fp3 = new HostTools([dir], cache, VISIBLE).fingerprint("mytool");
    assert.equal(fp3.digest, blake3Hex("#!/bin/sh\necho changed content\n"));
  });

  test("a cached fingerprint of a packaged tool stays valid across other packages' changes, and follows its own package's file list", () => {
    const cache = mapCache();
    const fp = new HostTools(["/usr/bin", "/bin"], cache).fingerprint("sh");
    assert.ok(fp.package, "sh belongs to a Debian package here");
    const cached = JSON.parse([...cache.map.values()][0]!) as { stats: Array<[string, number, number, number]> };
    const watched = cached.stats.map((s) => s[0]);
    assert.ok(watched.some((p) => p.startsWith("/var/lib/dpkg/info/") && p.endsWith(".list")), `its package's file list is watched: ${watched.join(" ")}`);
    assert.ok(!watched.includes("/var/lib/dpkg/status"), "not dpkg's status file: installing anything else would invalidate every tool");
    // a stale list stat (as after an upgrade of that package) invalidates the entry
    const [key, json] = [...cache.map][0]!;
    const stale = JSON.parse(json) as { fp: { digest: string }; stats: Array<[string, number, number, number]> };
    stale.fp.digest = "d".repeat(64);
    for (const s of stale.stats) if (s[0].endsWith(".list")) s[1] += 1;
    cache.map.set(key, JSON.stringify(stale));
    assert.equal(new HostTools(["/usr/bin", "/bin"], cache).fingerprint("sh").digest, fp.digest);
  });

  test("the owning package comes from dpkg's file lists, as dpkg-query -S names it", () => {
    for (const tool of ["sh", "gcc", "tar"]) {
      const fp = new HostTools(["/usr/bin", "/bin"]).fingerprint(tool);
      const real = realpathSync(fp.path!);
      const asked = [real, real.startsWith("/usr/") ? real.slice(4) : `/usr${real}`].map((p) => spawnSync("dpkg-query", ["-S", p], { encoding: "utf8" }))
        .find((r) => r.status === 0)!.stdout.split(":")[0]!.split(",")[0]!.trim();
      assert.equal(fp.package, asked, tool);
    }
  });

  test("a non-executable file is not a tool; a missing tool is HOST_TOOL_MISSING naming the tool and the recipe", () => {
    const { dir, tool } = toolDir("#!/bin/sh\n");
    chmodSync(tool, 0o644);
    assert.throws(
      () => new HostTools([dir], undefined, VISIBLE).fingerprint("mytool", "some-recipe (recipes/x.ts:1:1)"),
      (e: unknown) => e instanceof KilnError && e.code === "HOST_TOOL_MISSING" && e.message.includes("'mytool'") && e.message.includes("some-recipe"),
    );
    assert.throws(
      () => new HostTools([dir], undefined, VISIBLE).fingerprint("definitely-not-a-tool"),
      (e: unknown) => e instanceof KilnError && e.code === "HOST_TOOL_MISSING" && e.message.includes("definitely-not-a-tool") && /apt-file search bin\/definitely-not-a-tool/.test(e.hint ?? ""),
    );
  });

  test("a tool the sandbox cannot see (not under the host's /usr, /bin...) is refused, naming it and where it was found", () => {
    const { dir, tool } = toolDir("#!/bin/sh\necho hidden\n");
    assert.throws(
      () => new HostTools([dir]).fingerprint("mytool", "some-recipe (recipes/x.ts:1:1)"),
      (e: unknown) => e instanceof KilnError && e.code === "HOST_TOOL_MISSING" && e.message.includes(`host tool 'mytool' was found at ${tool}`)
        && e.message.includes("cannot see") && e.message.includes("some-recipe") && /install it under \/usr/.test(e.hint ?? ""),
    );
    // also when the fingerprint comes from the persistent cache (taken before the tool was refused)
    const cache = mapCache();
    new HostTools([dir], cache, VISIBLE).fingerprint("mytool");
    assert.throws(() => new HostTools([dir], cache).fingerprint("mytool"), (e: unknown) => e instanceof KilnError && e.code === "HOST_TOOL_MISSING");
    // a link under /usr... is not enough: the file it names must be visible too
    const linkDir = toolDir("").dir;
    rmSync(join(linkDir, "mytool"));
    symlinkSync(tool, join(linkDir, "mytool"));
    assert.throws(() => new HostTools([linkDir], undefined, [linkDir]).fingerprint("mytool"),
      (e: unknown) => e instanceof KilnError && e.code === "HOST_TOOL_MISSING" && e.message.includes(`(-> ${tool})`));
    // the host's own tools are visible, through /etc/alternatives too
    assert.equal(new HostTools(["/usr/bin", "/bin"]).fingerprint("sh").commands.sh, "/usr/bin/sh");
    assert.equal(new HostTools(["/usr/bin"]).fingerprint("cc").commands.cc, "/usr/bin/cc", "cc -> /etc/alternatives/cc -> gcc");
  });

  test("pkg: entries fingerprint a Debian package's commands", () => {
    const fp = new HostTools(["/usr/bin", "/bin"]).fingerprint("pkg:coreutils");
    assert.equal(fp.package, "coreutils");
    assert.ok(fp.version, "dpkg knows the version");
    assert.ok(fp.commands.ls && fp.commands.cat && fp.commands.mkdir, "ls, cat, mkdir are coreutils commands");
    assert.throws(() => new HostTools([]).fingerprint("pkg:definitely-not-a-package"), (e: unknown) => e instanceof KilnError && e.code === "HOST_TOOL_MISSING");
  });
});

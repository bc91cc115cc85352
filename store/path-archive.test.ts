// The cache archive of a store path: deterministic bytes, a faithful round trip (checked by the
// tree digest), and hostile archives refused without writing outside the destination.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as tar from "tar-stream";
import { compress } from "zstd-napi";
import { hashTree } from "./archive.js";
import { packPath, unpackPath } from "./path-archive.js";

const root = mkdtempSync(join(tmpdir(), "kiln-path-archive-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `t${n++}`);

function makeTree(dir: string, order: "a" | "b"): string {
  mkdirSync(dir);
  const steps = [
    () => writeFileSync(join(dir, "a.txt"), "alpha\n"),
    () => (mkdirSync(join(dir, "sub")), writeFileSync(join(dir, "sub", "big.bin"), Buffer.alloc(3 << 20, 7))),
    () => (writeFileSync(join(dir, "run.sh"), "#!/bin/sh\necho hi\n"), chmodSync(join(dir, "run.sh"), 0o755)),
    () => symlinkSync("sub/big.bin", join(dir, "link")),
    () => mkdirSync(join(dir, "empty")),
    () => writeFileSync(join(dir, "zero"), ""),
    () => writeFileSync(join(dir, `${"long-name-".repeat(12)}.txt`), "a name longer than tar's 100 bytes\n"),
  ];
  for (const s of order === "a" ? steps : [...steps].reverse()) s();
  return dir;
}

async function hostileArchive(entries: Array<{ header: Partial<tar.Header> & { name: string }; body?: string }>): Promise<string> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => void chunks.push(c as Buffer));
  const end = new Promise<void>((r) => pack.on("end", () => r()));
  for (const e of entries) pack.entry(e.header, e.body ?? "");
  pack.finalize();
  await end;
  const file = fresh();
  writeFileSync(file, compress(Buffer.concat(chunks)));
  return file;
}

describe("packPath / unpackPath", () => {
  test("the same tree packs to the same bytes, whatever order it was made in", async () => {
    const a = await packPath(makeTree(fresh(), "a"), "x-tree", fresh());
    const b = await packPath(makeTree(fresh(), "b"), "x-tree", fresh());
    assert.equal(a.sha256, b.sha256);
    assert.equal(a.size, b.size);
    assert.ok(a.size < 3 << 20, "compressed");
  });

  test("unpacking gives back a tree with the same digest; a file and a symlink root work too", async () => {
    const src = makeTree(fresh(), "a");
    const file = fresh();
    await packPath(src, "x-tree", file);
    const dest = fresh();
    await unpackPath(file, "x-tree", dest);
    assert.equal(hashTree(dest).digest, hashTree(src).digest);

    const single = fresh();
    writeFileSync(single, "just a file\n");
    chmodSync(single, 0o755);
    const f2 = fresh();
    await packPath(single, "x-file", f2);
    const d2 = fresh();
    await unpackPath(f2, "x-file", d2);
    assert.equal(hashTree(d2).digest, hashTree(single).digest);
  });

  test("GNU tar and zstd read the archive (it is a plain tar.zst)", async () => {
    const src = makeTree(fresh(), "a");
    const file = fresh();
    await packPath(src, "x-tree", file);
    const out = fresh();
    mkdirSync(out);
    execFileSync("sh", ["-c", `zstd -dc < ${file} | tar -x -C ${out}`]);
    assert.equal(hashTree(join(out, "x-tree")).digest, hashTree(src).digest);
  });

  test("hostile archives are refused and leave nothing behind", async () => {
    const cases: Array<[string, Array<{ header: Partial<tar.Header> & { name: string }; body?: string }>]> = [
      ["outside", [{ header: { name: "r", type: "directory" } }, { header: { name: "other/x", type: "file" }, body: "x" }]],
      ["dotdot", [{ header: { name: "r", type: "directory" } }, { header: { name: "r/../x", type: "file" }, body: "x" }]],
      ["through a symlink", [
        { header: { name: "r", type: "directory" } },
        { header: { name: "r/l", type: "symlink", linkname: root } },
        { header: { name: "r/l/escaped", type: "file" }, body: "x" },
      ]],
      ["twice", [{ header: { name: "r", type: "directory" } }, { header: { name: "r/a", type: "file" }, body: "1" }, { header: { name: "r/a", type: "file" }, body: "2" }]],
      ["device", [{ header: { name: "r", type: "directory" } }, { header: { name: "r/dev", type: "character-device" } }]],
    ];
    for (const [what, entries] of cases) {
      const dest = fresh();
      await assert.rejects(unpackPath(await hostileArchive(entries), "r", dest), (e: Error & { code?: string }) => e.code === "STORE_CORRUPT", what);
      assert.equal(existsSync(dest), false, what);
    }
    assert.equal(existsSync(join(root, "escaped")), false);
  });

  test("a damaged archive is refused as STORE_CORRUPT", async () => {
    const file = fresh();
    await packPath(makeTree(fresh(), "a"), "x-tree", file);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
    const dest = fresh();
    await assert.rejects(unpackPath(file, "x-tree", dest), /STORE_CORRUPT|damaged/);
    assert.equal(existsSync(dest), false);
  });
});

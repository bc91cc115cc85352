// source() of a directory, through the shipped CLI: a large tree is hashed by kiln-hash (the
// bundle finds dist/kiln-hash and keeps its cache in <store>/tree-digests) to the digest Kiln's
// own walk gives; what the store cannot keep (a FIFO, a name that is not UTF-8) is a clear
// RECIPE_INVALID (exit 2) naming the entry, for small and large trees alike, never an internal
// error or a "does not exist".
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { cleanup, kiln, REPO, tempDir } from "./test-helpers/kiln.js";

const HELPER = join(REPO, "dist", "kiln-hash");

/** A tree of `files` small files in folders of 100, plus whatever `extra` adds. */
function tree(root: string, files: number, extra?: (dir: string) => void): string {
  for (let i = 0; i < files; i++) {
    const d = join(root, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), `file ${i}\n`);
  }
  extra?.(root);
  return root;
}

function recipe(dir: string, src: string): string {
  const f = join(dir, "recipe.ts");
  writeFileSync(f, `import { derivation, sh, source } from "kiln";\nexport default { t: derivation({ name: "t", hostTools: ["sh"], script: sh\`: \${source(${JSON.stringify(src)})}; echo > $out\` }) };\n`);
  return f;
}

describe("source() of a directory through the CLI", { timeout: 120_000 }, () => {
  after(cleanup);

  test("a large tree is hashed by kiln-hash, to the digest of Kiln's own walk", { skip: existsSync(HELPER) ? false : "dist/kiln-hash is not built (no C compiler)" }, async () => {
    const dir = tempDir("src-large");
    const src = tree(join(dir, "src"), 1500);
    const f = recipe(dir, src);
    const store = join(dir, "store");
    const native = await kiln(["eval", "-f", f, "t"], { cwd: dir, store });
    assert.equal(native.code, 0, native.stderr);
    assert.equal(readdirSync(join(store, "tree-digests")).filter((n) => n.endsWith(".bin")).length, 1, "kiln-hash ran, with its cache in the store");
    const walked = await kiln(["eval", "-f", f, "t"], { cwd: dir, store: join(dir, "store-js"), env: { KILN_NATIVE_HASH: "0" } });
    assert.equal(walked.code, 0, walked.stderr);
    assert.equal(existsSync(join(dir, "store-js", "tree-digests")), false, "KILN_NATIVE_HASH=0: Kiln's own walk");
    assert.equal(native.stdout, walked.stdout, "the same derivation: the same source digest");
  });

  for (const files of [10, 1500]) {
    test(`a FIFO in a tree of ${files} files: RECIPE_INVALID naming it`, async () => {
      const dir = tempDir("src-fifo");
      const src = tree(join(dir, "src"), files, (root) => execFileSync("mkfifo", [join(root, "d0", "pipe")]));
      const r = await kiln(["eval", "-f", recipe(dir, src), "t"], { cwd: dir, store: join(dir, "store") });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /holds .*d0\/pipe, which is neither a file, a directory nor a symlink/);
      assert.doesNotMatch(r.stderr, /internal error/);
    });

    test(`a name that is not UTF-8 in a tree of ${files} files: RECIPE_INVALID, not "does not exist"`, async () => {
      const dir = tempDir("src-name");
      const src = tree(join(dir, "src"), files, (root) => {
        // Node's fs takes the name's bytes as a Buffer path
        writeFileSync(Buffer.concat([Buffer.from(join(root, "d0", "bad")), Buffer.from([0xff])]), "x");
      });
      const r = await kiln(["eval", "-f", recipe(dir, src), "t"], { cwd: dir, store: join(dir, "store") });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /holds an entry whose name is not UTF-8: .*d0\/bad/);
      assert.doesNotMatch(r.stderr, /does not exist|internal error/);
    });
  }
});

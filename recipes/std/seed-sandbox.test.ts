// The seed's tools, proved in a sandbox of their own: the locked .debs of the pi4-llm-os and m-series sets are
// fetched (into a cache outside the repo, reused between runs), unpacked with builtin:unpack-deb,
// merged with builtin:seed-root, and bubblewrap runs programs with ONLY that tree as /usr (/bin,
// /sbin, /lib, /lib64 linking into it), a private /proc, /dev and /tmp, and no /etc at all. The
// tools builds need must work there unmodified, and the host's own files must not be visible.
//
// The cache: $KILN_SEED_DEB_CACHE, else ~/.cache/kiln-test/seed-debs (~220 MiB the first time).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, REPO, SEED_DEB_CACHE as CACHE, tempDir } from "../../cli/test-helpers/kiln.js";
import { seedRoot } from "../../engine/builtins/seed-root.js";
import { unpackDeb } from "../../engine/builtins/unpack-deb.js";
import { fetchFixed } from "../../engine/fetch.js";
import { parseSeedLock, parseSeedSets, type LockedPackage } from "../../engine/seed-lock.js";
import { hashTree } from "../../store/archive.js";
import { sha256File } from "../../store/digest.js";

const SEED_DIR = join(REPO, "recipes", "std", "seed");
const lock = parseSeedLock(readFileSync(join(SEED_DIR, "seed.lock.json"), "utf8"), "seed.lock.json");
const sets = parseSeedSets(readFileSync(join(SEED_DIR, "sets.json"), "utf8"), "sets.json");
const BASE = ["base"];
/** the sets pi4-llm-os and m-series build on, in one tree */
const PI4 = ["base", "cross-aarch64", "kernel", "images", "qemu-system-arm", "qemu-user", "dev", "python", "ssh"];
const bwrapMissing = spawnSync("bwrap", ["--version"]).status !== 0;

function debFile(p: LockedPackage): string {
  return join(CACHE, `${p.name}_${p.version.replace(/^\d+:/, "")}_${p.arch}.deb`);
}

/** The .deb of each package, from the cache or fetched with kiln's own fetcher (url, then apt). */
async function ensureDebs(keys: string[], scratch: string): Promise<{ fetched: number; bytes: number }> {
  mkdirSync(CACHE, { recursive: true });
  let fetched = 0;
  let bytes = 0;
  const queue = [...keys];
  const worker = async () => {
    for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
      const p = lock.packages[k]!;
      const file = debFile(p);
      if (existsSync(file) && sha256File(file) === p.sha256) continue;
      const dir = join(scratch, k.replace(/[^a-zA-Z0-9.+-]/g, "_"));
      await fetchFixed({
        name: `${p.name}.deb`, sha256: p.sha256, mirrors: [], dir, env: process.env as Record<string, string>, signal: new AbortController().signal, onLine: () => {},
        sources: [{ url: p.url }, { deb: { package: p.name, version: p.version, ...(p.arch !== "all" ? { arch: p.arch } : {}) } }],
      });
      renameSync(join(dir, "out"), file);
      fetched++;
      bytes += p.size;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { fetched, bytes };
}

function duBytes(dir: string): number {
  const r = spawnSync("du", ["-sb", "--count-links", dir], { encoding: "utf8" });
  return Number(r.stdout.split("\t")[0]);
}

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

interface Seeded {
  root: string;
  build: string;
}

/** Run a shell script with the seed tree as the whole system; returns the exit code and output. */
function inSeed(s: Seeded, script: string): { code: number | null; out: string } {
  const r = spawnSync("bwrap", [
    "--unshare-all", "--die-with-parent", "--new-session",
    "--uid", "1000", "--gid", "1000", "--hostname", "kiln",
    "--ro-bind", join(s.root, "usr"), "/usr",
    "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
    "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
    "--bind", s.build, "/build", "--chdir", "/build",
    "--clearenv", "--setenv", "PATH", "/usr/bin:/usr/sbin", "--setenv", "HOME", "/homeless-shelter", "--setenv", "LC_ALL", "C", "--setenv", "TZ", "UTC",
    "--", "/bin/sh", "-euc", script,
  ], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function ok(s: Seeded, script: string): string {
  const r = inSeed(s, script);
  assert.equal(r.code, 0, `in the seed sandbox:\n${script}\n--- output\n${r.out}`);
  return r.out;
}

describe("the seed as the whole /usr of a sandbox", { skip: bwrapMissing && "bubblewrap is not installed", timeout: 30 * 60_000 }, () => {
  const work = tempDir("seed-sandbox");
  const trees = new Map<string, string>();
  let base: Seeded;
  let pi4: Seeded;

  before(async () => {
    const keys = [...new Set(PI4.flatMap((s) => lock.sets[s]!.packages))].sort();
    let t = Date.now();
    const got = await ensureDebs(keys, join(work, "fetch"));
    const tFetch = Date.now() - t;
    // two at a time, as a realizer with -j2 would: xz decompression runs off the main thread
    const unpackAll = async (todo: string[]) => {
      const queue = [...todo];
      const worker = async () => {
        for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
          const out = join(work, "pkgs", k.replace(":", "_"));
          await unpackDeb(debFile(lock.packages[k]!), out);
          trees.set(k, out);
        }
      };
      await Promise.all([worker(), worker()]);
    };
    const baseKeys = lock.sets.base!.packages;
    t = Date.now();
    await unpackAll(baseKeys);
    const tUnpackBase = Date.now() - t;
    t = Date.now();
    await unpackAll(keys.filter((k) => !trees.has(k)));
    const tUnpackRest = Date.now() - t;
    const merge = (names: string[]) => {
      const root = join(work, `seed-${names.join("+")}`);
      const packages = [...new Set(names.flatMap((s) => lock.sets[s]!.packages))].map((k) => ({ name: lock.packages[k]!.name, path: trees.get(k)! }));
      const links = Object.assign({}, ...names.map((s) => sets.sets[s]!.links ?? {}));
      const prefer = Object.assign({}, ...names.map((s) => sets.sets[s]!.prefer ?? {}));
      const r = seedRoot({ packages, links, prefer, out: root });
      const build = join(work, `build-${names.length}`);
      mkdirSync(build);
      return { seeded: { root, build }, result: r, packages: packages.length };
    };
    t = Date.now();
    const b = merge(BASE);
    const tMergeBase = Date.now() - t;
    t = Date.now();
    const p = merge(PI4);
    const tMergePi4 = Date.now() - t;
    base = b.seeded;
    pi4 = p.seeded;
    const packed = keys.reduce((n, k) => n + lock.packages[k]!.size, 0);
    process.stderr.write([
      `seed: ${keys.length} packages (${MiB(packed)} of .debs; ${got.fetched} fetched now, ${MiB(got.bytes)}) in ${tFetch} ms`,
      `  unpacked: base in ${tUnpackBase} ms, the other ${keys.length - baseKeys.length} in ${tUnpackRest} ms; ${MiB(duBytes(join(work, "pkgs")))}`,
      `  base: ${b.packages} packages, ${MiB(baseKeys.reduce((n, k) => n + lock.packages[k]!.size, 0))} of .debs, tree ${MiB(duBytes(base.root))}, merged in ${tMergeBase} ms (${b.result.files} files: ${b.result.linked} linked, ${b.result.copied} copied)`,
      `  pi4 sets: ${p.packages} packages, tree ${MiB(duBytes(pi4.root))}, merged in ${tMergePi4} ms`,
      "",
    ].join("\n"));
  });
  after(() => {
    rmSync(work, { recursive: true, force: true });
    cleanup();
  });

  test("the base tree: a shell, coreutils and the ELF interpreter resolve inside the seed", () => {
    const out = ok(base, "readlink /lib64/ld-linux-x86-64.so.2; ls -l /bin/sh | sed 's/.* -> //'; id -u; uname -n; echo done");
    assert.equal(out, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\ndash\n1000\nkiln\ndone\n");
  });

  test("nothing of the host's /usr is visible: bwrap, node and the host's /etc are not there", () => {
    assert.ok(existsSync("/usr/bin/bwrap"), "the host has bwrap");
    const out = ok(base, "for f in /usr/bin/bwrap /usr/bin/node /usr/bin/apt-get /etc/debian_version /etc/passwd; do if [ -e $f ]; then echo \"visible $f\"; else echo \"absent $f\"; fi; done; command -v bwrap || echo 'no bwrap on PATH'");
    assert.equal(out, ["absent /usr/bin/bwrap", "absent /usr/bin/node", "absent /usr/bin/apt-get", "absent /etc/debian_version", "absent /etc/passwd", "no bwrap on PATH", ""].join("\n"));
  });

  test("gcc-12 and g++ compile and link C and C++ programs against the seed's glibc and libstdc++", () => {
    const out = ok(base, String.raw`
      cat > hello.c <<'EOF'
#include <math.h>
#include <stdio.h>
int main(int argc, char **argv) { (void)argv; printf("c %.1f\n", sqrt(argc + 1.0) * sqrt(2.0)); return 0; }
EOF
      cat > hello.cc <<'EOF'
#include <iostream>
#include <vector>
int main() { std::vector<int> v{1, 2, 3}; std::cout << "c++ " << v.size() << std::endl; }
EOF
      gcc-12 -O2 -o hello hello.c -lm && ./hello
      cc -o hello-cc hello.c -lm && ./hello-cc
      g++ -O2 -o hellocc hello.cc && ./hellocc
      c++ -o hellocc2 hello.cc && ./hellocc2
      gcc -E -dM - </dev/null | grep -c __x86_64__
    `);
    assert.equal(out, "c 2.0\nc 2.0\nc++ 3\nc++ 3\n1\n");
  });

  test("make, perl, awk, sed, tar -J, bison, yacc, flex and bc run", () => {
    const out = ok(base, String.raw`
      printf 'all:\n\t@echo make $(words a b c)\n' > Makefile && make
      perl -MTime::HiRes=time -MPOSIX=floor -e 'print "perl ", floor(3.7), "\n"'
      echo 'x 42' | awk '{print "awk", $2}'
      echo 'sed bad' | sed 's/bad/ok/'
      mkdir -p t && echo payload > t/f && tar -cJf t.tar.xz t && rm -r t && tar -xJf t.tar.xz && echo "tar $(cat t/f)"
      cat > g.y <<'EOF'
%{
#include <stdio.h>
int yylex(void);
void yyerror(const char *s) { fprintf(stderr, "%s\n", s); }
%}
%token NUM
%%
top: NUM '+' NUM { printf("bison %d\n", $1 + $3); };
%%
static const int toks[] = { NUM, '+', NUM, 0 }, vals[] = { 2, 0, 40, 0 };
static int i;
int yylex(void) { yylval = vals[i]; return toks[i++]; }
int main(void) { return yyparse(); }
EOF
      bison -o g.c g.y && gcc -o g g.c && ./g
      yacc -o y.c g.y && gcc -o y y.c && ./y | sed 's/bison/yacc/'
      cat > s.l <<'EOF'
%option noyywrap
%%
[a-z]+ { printf("flex %s\n", yytext); }
.|\n ;
%%
int main(void) { return yylex(); }
EOF
      flex -o s.c s.l && gcc -o s s.c && echo 'word 12' | ./s
      echo '2^10' | bc
    `);
    assert.equal(out, "make 3\nperl 3\nawk 42\nsed ok\ntar payload\nbison 42\nyacc 42\nflex word\n1024\n");
  });

  test("the pi4 sets: aarch64-linux-gnu-gcc builds a static program that qemu-aarch64-static runs", () => {
    const out = ok(pi4, String.raw`
      cat > arm.c <<'EOF'
#include <stdio.h>
int main(void) { printf("hello from aarch64\n"); return 0; }
EOF
      aarch64-linux-gnu-gcc -static -O2 -o arm arm.c
      file -b arm | cut -d, -f1,2
      qemu-aarch64-static ./arm
      aarch64-linux-gnu-g++ --version | head -1 | cut -d' ' -f1
    `);
    assert.equal(out, "ELF 64-bit LSB executable, ARM aarch64\nhello from aarch64\naarch64-linux-gnu-g++\n");
  });

  test("the pi4 sets: qemu-system-aarch64 starts", () => {
    const out = ok(pi4, "qemu-system-aarch64 --version | head -1 | cut -d' ' -f1-4; qemu-system-aarch64 -M help | grep -c '^virt '");
    assert.match(out, /^QEMU emulator version 7\.2\.\d+.*\n1\n$/);
  });

  test("the pi4 sets: mkfs.vfat, mcopy, mke2fs, debugfs, sfdisk and cpio make images", () => {
    const out = ok(pi4, String.raw`
      echo data > f.txt
      truncate -s 34M fat.img && mkfs.vfat -F 32 fat.img >/dev/null && MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null mcopy -i fat.img f.txt ::f.txt && MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null mtype -i fat.img ::f.txt
      fsck.vfat -n fat.img >/dev/null && echo fsck.vfat ok
      mkdir -p root/etc && cp f.txt root/etc/
      truncate -s 16M ext.img && mke2fs -q -t ext4 -d root -F ext.img && debugfs -R 'cat /etc/f.txt' ext.img 2>/dev/null
      e2fsck -fn ext.img >/dev/null 2>&1 && echo e2fsck ok
      truncate -s 64M disk.img && printf 'label: dos\nstart=2048, size=32768, type=c\nstart=34816, type=83\n' | sfdisk -q disk.img && sfdisk -d disk.img | grep -c '^disk.img'
      echo f.txt | cpio -o -H newc 2>/dev/null > f.cpio && cpio -it < f.cpio 2>/dev/null
      kmod --version | head -1 | cut -d' ' -f1
    `);
    assert.equal(out, "data\nfsck.vfat ok\ndata\ne2fsck ok\n2\nf.txt\nkmod\n");
  });

  test("the dev, python and ssh sets: git, cmake, ninja, python3 with numpy and yaml (BLAS through the set's links), and ssh's libraries resolve (it wants a passwd entry to run, which this sandbox has not)", () => {
    const out = ok(pi4, String.raw`
      git --version | cut -d' ' -f1-2
      cmake --version | head -1 | cut -d' ' -f1-2
      ninja --version | cut -d. -f1
      python3 -c 'import numpy, yaml; print("numpy", numpy.dot(numpy.arange(3.0), numpy.arange(3.0)), yaml.safe_load("a: 1")["a"])'
      ldd /usr/bin/ssh /usr/bin/ssh-keygen | grep -c "not found" || true
    `);
    assert.equal(out, "git version\ncmake version\n1\nnumpy 5.0 1\n0\n");
  });

  test("unpacking is deterministic: the same package gives the same tree twice", async () => {
    const k = "bash:amd64";
    const again = join(work, "bash-again");
    await unpackDeb(debFile(lock.packages[k]!), again);
    assert.equal(hashTree(again).digest, hashTree(trees.get(k)!).digest);
    assert.ok(statSync(join(again, "usr/bin/bash")).isFile());
  });
});

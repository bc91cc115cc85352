// Every source BlazeNeuro builds from, pinned by sha256 of the exact bytes.
//
// - binutils, gcc and glibc come from Debian's *-source binary packages: each carries the upstream
//   tarball as Debian builds it (glibc's and binutils' with Debian's patches already applied; gcc's
//   is the "dfsg" tarball, upstream 12.2.0 without the GFDL manuals, so its builds pass
//   MAKEINFO=true). The tarball inside is a fixed output of its own, so a user who has it can
//   `kiln store add-fixed` it without the .deb.
// - Linux's API headers come from std's linux-source-6.1 (shared with pi4-llm-os and m-series).
// - Everything else is an upstream tarball as Debian's source packages carry it (.orig.tar.*),
//   from the archive's pool or `apt-get source`: `fetchDebSource`.
import { sh, type Drv } from "kiln";
import { build, fetchDeb, fetchDebSource } from "../std/index.js";
import { linuxSourceTarball } from "../std/linux.js";

export { linuxSourceTarball };

/** A tarball inside a pinned .deb, as a fixed output. */
function tarballOf(deb: Drv, path: string, name: string, sha256: string): Drv {
  return build({ name, sha256, script: sh`dpkg-deb --fsys-tarfile ${deb} | tar -xO ./${path} > $out` });
}

export const debs = {
  binutilsSource: fetchDeb({
    package: "binutils-source", version: "2.40-2",
    sha256: "4c03b0d0508f8134200ec083e4dbb81b906efbfa0d7a2bdb7aa0c120aabda246",
    urls: ["http://deb.debian.org/debian/pool/main/b/binutils/binutils-source_2.40-2_all.deb"],
  }),
  gccSource: fetchDeb({
    package: "gcc-12-source", version: "12.2.0-14+deb12u1",
    sha256: "8f2a5411028dfe216aeb6346b926df0cc7471f375c6a375bf180fbf279af02a1",
    urls: ["http://deb.debian.org/debian/pool/main/g/gcc-12/gcc-12-source_12.2.0-14+deb12u1_all.deb"],
  }),
  glibcSource: fetchDeb({
    package: "glibc-source", version: "2.36-9+deb12u14",
    sha256: "8e9f57b1df23396b05cf5b1561fd83bd53dc01b86432fd2dc75ab7b48645c3b2",
    urls: ["http://deb.debian.org/debian/pool/main/g/glibc/glibc-source_2.36-9+deb12u14_all.deb"],
  }),
};

export const binutils = {
  version: "2.40",
  src: tarballOf(debs.binutilsSource, "usr/src/binutils/binutils-2.40.tar.xz", "binutils-2.40-debian-2.40-2.tar.xz",
    "797fbf86910eec8dec1e2815ab3e92b98b9cd8c9ab1a57b216cc97dd90b4df9f"),
};

export const gcc = {
  version: "12.2.0",
  src: tarballOf(debs.gccSource, "usr/src/gcc-12/gcc-12.2.0-dfsg.tar.xz", "gcc-12.2.0-dfsg-debian-12.2.0-14+deb12u1.tar.xz",
    "50c63ff82919323c25fbbb4a9eae259edc974118a0fb30c905190cb782ec11c2"),
};

/**
 * Debian's patch for building from that tarball: its tm.texi.in is a stub, so the check that
 * regenerates tm.texi from it (run by `make install`) is replaced by a copy.
 */
export const gccGfdlBuildPatch = build({
  name: "gcc-gfdl-build.diff",
  sha256: "29b36f739f29959b580364a7aff45a0f291a6bd7c803af6794b737130acfb751",
  script: sh`dpkg-deb --fsys-tarfile ${debs.gccSource} | tar -xO ./usr/src/gcc-12/debian/patches/gcc-gfdl-build.diff > $out`,
});

export const glibc = {
  version: "2.36",
  src: tarballOf(debs.glibcSource, "usr/src/glibc/glibc-2.36.tar.xz", "glibc-2.36-debian-2.36-9+deb12u14.tar.xz",
    "95f0ed7a02f15857fe725c510e0e2cb9050fb7793bcde4cc72ddf8def40d5cf8"),
};

/** gcc's arithmetic libraries, built inside its tree as Linux From Scratch does. */
export const gmp = { version: "6.2.1", src: fetchDebSource({ package: "gmp", version: "2:6.2.1+dfsg1-1.1", file: "gmp_6.2.1+dfsg1.orig.tar.xz", sha256: "471b9e463e04362a0124f215afc5f0a4b99caedeeb62634c61bbc12988efa64c" }) };
export const mpfr = { version: "4.2.0", src: fetchDebSource({ package: "mpfr4", version: "4.2.0-1", file: "mpfr4_4.2.0.orig.tar.xz", sha256: "06a378df13501248c1b2db5aa977a2c8126ae849a9d9b7be2546fb4a9c26d993" }) };
export const mpc = { version: "1.3.1", src: fetchDebSource({ package: "mpclib3", version: "1.3.1-1", file: "mpclib3_1.3.1.orig.tar.gz", sha256: "ab642492f5cf882b74aa0cb730cd410a81edcdbec895183ce930e706c1c759b8" }) };

/**
 * Debian's make-dfsg tarball is the source without its manual and without a generated build
 * system; Debian's diff (which also drops the manual from Makefile.am and configure.ac) and
 * autoreconf give it one, as Debian's own build does.
 */
export const makeDebianDiff = fetchDebSource({
  package: "make-dfsg", version: "4.3-4.1", file: "make-dfsg_4.3-4.1.diff.gz",
  sha256: "753c254ecaba425ebe2e0a0fb4d299847701e1c3eeb43df563e39975cae56b4c",
});

const makeOrig = fetchDebSource({ package: "make-dfsg", version: "4.3-4.1", file: "make-dfsg_4.3.orig.tar.gz", sha256: "be4c17542578824e745f83bcd2a9ba264206187247cb6a5f5df99b0a9d1f9047" });

/**
 * make's source as a release tarball would carry it: Debian's tree, its diff, then autoreconf on
 * the seed, once. The temporary system cross-builds it, the final system builds it natively with
 * no autotools at hand.
 */
export const makeSource = build({
  name: "make-4.3.tar.xz",
  seed: ["autotools"],
  script: sh`tar -xf ${makeOrig} --no-same-owner && mv make-dfsg-4.3 make-4.3 && cd make-4.3
    zcat ${makeDebianDiff} | patch -p1 --no-backup-if-mismatch -s
    autoreconf -fi
    rm -rf autom4te.cache
    cd ..
    # one time for every file (make then sees configure as up to date with configure.ac), a fixed order and owner
    tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf - make-4.3 | xz -6 -T1 > $out`,
});

/** The temporary system's packages: Debian bookworm's upstream tarballs. */
function up(pkg: string, debianVersion: string, version: string, file: string, sha256: string) {
  return { version, src: fetchDebSource({ package: pkg, version: debianVersion, file, sha256 }) };
}

export const tools = {
  m4: up("m4", "1.4.19-3", "1.4.19", "m4_1.4.19.orig.tar.xz", "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96"),
  ncurses: up("ncurses", "6.4-4", "6.4", "ncurses_6.4.orig.tar.gz", "6931283d9ac87c5073f30b6290c4c75f21632bb4fc3603ac8100812bed248159"),
  bash: up("bash", "5.2.15-2", "5.2.15", "bash_5.2.15.orig.tar.gz", "7a315bc0e9d90713159e4390ec1096a41e4f33cd8cc3d1a749a8e5ad56600f51"),
  coreutils: up("coreutils", "9.1-1", "9.1", "coreutils_9.1.orig.tar.xz", "61a1f410d78ba7e7f37a5a4f50e6d1320aca33375484a3255eddf17a38580423"),
  diffutils: up("diffutils", "1:3.8-4", "3.8", "diffutils_3.8.orig.tar.xz", "a6bdd7d1b31266d11c4f4de6c1b748d4607ab0231af5188fc2533d0ae2438fec"),
  file: up("file", "1:5.44-3", "5.44", "file_5.44.orig.tar.gz", "3751c7fba8dbc831cb8d7cc8aff21035459b8ce5155ef8b0880a27d028475f3b"),
  findutils: up("findutils", "4.9.0-4", "4.9.0", "findutils_4.9.0.orig.tar.xz", "a2bfb8c09d436770edc59f50fa483e785b161a3b7b9d547573cb08065fd462fe"),
  gawk: up("gawk", "1:5.2.1-2", "5.2.1", "gawk_5.2.1.orig.tar.xz", "2337a0283b180ec1b9c727973a34781c6478b3ae9bcbdcca0a4dc49861d75a65"),
  grep: up("grep", "3.8-5", "3.8", "grep_3.8.orig.tar.xz", "498d7cc1b4fb081904d87343febb73475cf771e424fb7e6141aff66013abc382"),
  gzip: up("gzip", "1.12-1", "1.12", "gzip_1.12.orig.tar.xz", "ce5e03e519f637e1f814011ace35c4f87b33c0bbabeec35baf5fbd3479e91956"),
  make: { version: "4.3", src: makeSource },
  patch: up("patch", "2.7.6-7", "2.7.6", "patch_2.7.6.orig.tar.xz", "ac610bda97abe0d9f6b7c963255a11dcb196c25e337c61f94e4778d632f1d8fd"),
  sed: up("sed", "4.9-1+deb12u1", "4.9", "sed_4.9.orig.tar.xz", "6e226b732e1cd739464ad6862bd1a1aba42d7982922da7a53519631d24975181"),
  tar: up("tar", "1.34+dfsg-1.2+deb12u1", "1.34", "tar_1.34+dfsg.orig.tar.xz", "7d57029540cb928394defb3b377b3531237c947e795b51aa8acac0c5ba0e4844"),
  xz: up("xz-utils", "5.4.1-1+deb12u2", "5.4.1", "xz-utils_5.4.1.orig.tar.xz", "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5"),
};

/** The final system's additions: the seed's filesystem support (LFS chapter 8). */
export const system = {
  utilLinux: up("util-linux", "2.38.1-5+deb12u3", "2.38.1", "util-linux_2.38.1.orig.tar.xz", "60492a19b44e6cf9a3ddff68325b333b8b52b6c59ce3ebd6a0ecaa4c5117e84f"),
  flex: up("flex", "2.6.4-8.2", "2.6.4", "flex_2.6.4.orig.tar.gz", "e87aae032bf07c26f85ac0ed3250998c37621d95f8bd748b31f15b33c45ee995"),
  bison: up("bison", "2:3.8.2+dfsg-1", "3.8.2", "bison_3.8.2+dfsg.orig.tar.xz", "dff8a3c96dd34121828f62a7fa49e1f7765815b89e59f564e8d2a9e71c177be5"),
  pkgconf: up("pkgconf", "1.8.1-1", "1.8.1", "pkgconf_1.8.1.orig.tar.xz", "644361ada2942be05655d4452eb018791647c31bba429b287f1f68deb2dc6840"),
  e2fsprogs: up("e2fsprogs", "1.47.0-2", "1.47.0", "e2fsprogs_1.47.0.orig.tar.gz", "6667afde56eef0c6af26684974400e4d2288ea49e9441bf5e6229195d51a3578"),
};

// Real conditions for the store-safety tests: a small tmpfs that a build can fill, a read-only
// bind mount, an overlayfs. Mounting needs root (the CI runs as root); unmountAll() undoes what was mounted.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const canMount = process.getuid?.() === 0;

const mounted: string[] = [];

function run(args: string[]): void {
  const r = spawnSync("mount", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mount ${args.join(" ")}: ${r.stderr || r.error}`);
}

/** A tmpfs of `size` (e.g. "3m") at `dir`: a file system that really fills up. */
export function mountTmpfs(dir: string, size: string): void {
  run(["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  mounted.push(dir);
}

/** An overlayfs at `dir`, its layers in `layers` (lower, upper, work): what a container's root often is. */
export function mountOverlay(dir: string, layers: string): void {
  for (const d of ["lower", "upper", "work"]) mkdirSync(join(layers, d), { recursive: true });
  run(["-t", "overlay", "overlay", "-o", `lowerdir=${join(layers, "lower")},upperdir=${join(layers, "upper")},workdir=${join(layers, "work")}`, dir]);
  mounted.push(dir);
}

/** `path` (a file or directory) bind-mounted read-only over itself, or at `at`. */
export function bindReadOnly(path: string, at = path): void {
  run(["--bind", path, at]);
  mounted.push(at);
  run(["-o", "remount,bind,ro", at]);
}

export function unmount(dir: string): void {
  const i = mounted.lastIndexOf(dir);
  if (i >= 0) mounted.splice(i, 1);
  spawnSync("umount", [dir]);
}

export function unmountAll(): void {
  for (const d of mounted.splice(0).reverse()) spawnSync("umount", ["-l", d]);
}

/** Write zeros to `file` until its file system is full. */
export function fillUp(file: string): void {
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    try {
      writeFileSync(file, chunk, { flag: "a" });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOSPC") return;
      throw e;
    }
  }
}

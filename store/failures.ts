// What the machine does to a store, as typed errors: a damaged database, a full or read-only
// file system, an I/O error, a file kiln may not write. SQLite and Node report these as plain
// errors (SqliteError 'SQLITE_FULL', errno 'ENOSPC'...), which would otherwise reach the user as
// "internal error"; here they become KilnErrors that name the file and say what to do.
import { statfsSync } from "node:fs";
import { join } from "node:path";
import { KilnError, type AnyKilnError } from "./errors.js";

export const DB_FILE = "db.sqlite";
export const BACKUP_FILE = "db.backup.sqlite";

/** The hint for a database that must be repaired, with the store it concerns. */
export function repairHint(root: string): string {
  return `run \`kiln verify --repair --store ${root}\` (with no other kiln running on this store): it keeps the damaged file aside, ` +
    `restores the backup ${join(root, BACKUP_FILE)} (roots, pins, profiles, history) and re-registers the store paths on disk by re-hashing them`;
}

const errnoText: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EROFS: "read-only file system",
  EIO: "input/output error",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
};

/**
 * A store failure as a typed error, or undefined when `e` is none (a bug, or already typed).
 * `root`: the store it happened in (SQLite errors do not say which file).
 */
export function storeFailure(e: unknown, root: string): AnyKilnError | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== "string") return undefined;
  const message = (e as Error).message ?? "";
  if ((e as Error).name === "SqliteError" || code.startsWith("SQLITE_")) return sqliteFailure(code, message, join(root, DB_FILE), root);
  const what = errnoText[code];
  if (!what) return undefined;
  const file = (e as NodeJS.ErrnoException).path ?? (e as { dest?: string }).dest;
  const where = file ?? `a file of the store ${root}`;
  const hint = code === "ENOSPC" || code === "EDQUOT"
    ? `free space on the file system holding ${where} (kiln gc deletes what no root keeps), then run the command again`
    : code === "EROFS"
      ? `${where} is on a read-only file system: remount it read-write, or point --store (KILN_STORE) at a writable directory`
      : code === "EIO"
        ? "the disk reported an error: check it (dmesg), then run `kiln verify`"
        : `make ${where} writable by the user running kiln, or point --store (KILN_STORE) elsewhere`;
  return new KilnError("IO_ERROR", `${what}: ${where}`, hint, { ...(file ? { file } : {}), errno: code });
}

function sqliteFailure(code: string, message: string, file: string, root: string): AnyKilnError | undefined {
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return new KilnError("STORE_CORRUPT", `the store database ${file} is damaged (${message})`, repairHint(root), { file });
  }
  if (fullDisk(code, root)) {
    return new KilnError("IO_ERROR", `no space left on device: the store database ${file} could not be written (${code}: ${message})`,
      `free some space on the file system holding ${root} (kiln needs a little to open its database), then run the command again; \`kiln gc\` deletes what no root keeps`, { file, errno: code });
  }
  if (code.startsWith("SQLITE_READONLY")) {
    return new KilnError("IO_ERROR", `the store database ${file} cannot be written (${message})`,
      `the store must be on a writable file system and writable by the user running kiln; or point --store (KILN_STORE) elsewhere`, { file, errno: code });
  }
  if (code.startsWith("SQLITE_CANTOPEN") || code === "SQLITE_PERM") {
    return new KilnError("IO_ERROR", `cannot open the store database ${file} (${message})`,
      `check that ${root} and the files in it are readable and writable by the user running kiln, or point --store (KILN_STORE) elsewhere`, { file, errno: code });
  }
  if (code.startsWith("SQLITE_IOERR")) {
    return new KilnError("IO_ERROR", `disk I/O error on the store database ${file} (${code}: ${message})`,
      `check the disk (dmesg) and free space on it; then \`kiln verify\`; if it reports the database damaged, ${repairHint(root)}`, { file, errno: code });
  }
  return undefined;
}

/**
 * Whether error code `code` (errno or SQLite's) says the file system holding `root` is full: a
 * full disk shows as ENOSPC or EDQUOT, as SQLITE_FULL, or as an I/O error on the files beside the
 * database (-shm) while the disk has no room.
 */
export function fullDisk(code: string, root: string): boolean {
  return code === "ENOSPC" || code === "EDQUOT" || code === "SQLITE_FULL" || (code.startsWith("SQLITE_IOERR") && diskFull(root));
}

/** Whether the file system holding `dir` has (almost) no space left for an unprivileged writer. */
export function diskFull(dir: string): boolean {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize < 1 << 20;
  } catch {
    return false;
  }
}

// A store path as one file, for binary caches and remote builders: a tar of its canonical tree,
// zstd-compressed. Deterministic: entries in bytewise name order, owners 0, mtime 1 s, modes as
// in the store (files 0444 or 0555, directories 0555), so the same path always packs to the same
// bytes and an archive's sha256 names it. The root entry is the path's own name, so `tar -x`
// by hand gives a recognisable tree.
//
// Unpacking takes untrusted input: only files, directories and symlinks, every name under the
// root, no `..`, every parent a directory this unpacking made (a symlink in the archive is never
// followed), nothing twice. What comes out is then re-hashed by importPath (registration.ts): the
// archive is trusted for nothing.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { CompressStream, DecompressStream } from "zstd-napi";
import { isExecutable } from "./archive.js";
import { KilnError } from "./errors.js";
import { removeTree } from "./paths.js";

/** Files up to this size are read whole; larger ones are streamed. */
const SMALL_FILE = 1 << 20;
const MTIME = new Date(1000);

export interface PackedFile {
  /** hex sha256 of the compressed archive */
  sha256: string;
  /** bytes of the compressed archive */
  size: number;
}

/** Counts and hashes what passes through. */
class Digesting extends Transform {
  readonly hash = createHash("sha256");
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Pack the tree at `host` (a store path, or any canonical tree) named `root` into the archive
 * file `dest`, zstd at `level` (3, zstd's default, unless given).
 */
export async function packPath(host: string, root: string, dest: string, o: { level?: number; signal?: AbortSignal } = {}): Promise<PackedFile> {
  const pack = tar.pack();
  const digest = new Digesting();
  // one zstd worker thread: compression runs beside the reading, tarring and hashing here
  const done = pipeline(pack, new CompressStream({ compressionLevel: o.level ?? 3, nbWorkers: 1 }), digest, createWriteStream(dest), o.signal ? { signal: o.signal } : {});
  try {
    await addEntries(pack, host, root);
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    await done.catch(() => {});
    throw e;
  }
  await done;
  return { sha256: digest.hash.digest("hex"), size: digest.size };
}

/** The tree's entries in bytewise order (as store/archive.ts hashes them), each header canonical. */
async function addEntries(pack: tar.Pack, path: string, name: string): Promise<void> {
  const st = lstatSync(path);
  const base = { name, mtime: MTIME, uid: 0, gid: 0, uname: "", gname: "" };
  if (st.isSymbolicLink()) {
    await entry(pack, { ...base, type: "symlink", mode: 0o777, linkname: readlinkSync(path) });
  } else if (st.isDirectory()) {
    await entry(pack, { ...base, type: "directory", mode: 0o555 });
    const names = readdirSync(path, { encoding: "buffer" }).sort(Buffer.compare);
    for (const child of names) {
      const s = child.toString();
      // tar names are text: a name that is not valid UTF-8 would not come back the same
      if (!Buffer.from(s).equals(child)) throw new KilnError("STORE_PATH_INVALID", `cannot archive ${join(path, child.toString("latin1"))}: its name is not UTF-8`, "rename the file in the recipe that makes it", { path });
      await addEntries(pack, join(path, s), `${name}/${s}`);
    }
  } else if (st.isFile()) {
    const header: Partial<tar.Header> & { name: string } = { ...base, type: "file", mode: isExecutable(st) ? 0o555 : 0o444, size: st.size };
    if (st.size <= SMALL_FILE) await entry(pack, header, readFileSync(path));
    else {
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
        const src = createReadStream(path, { highWaterMark: SMALL_FILE });
        src.on("error", reject);
        src.pipe(sink);
      });
    }
  } else {
    throw new KilnError("STORE_CORRUPT", `cannot archive ${path}: only files, directories and symlinks can be in a store path`, "run `kiln verify`", { path });
  }
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (body) pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
    else pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Unpack the archive file `file` (packed by packPath as `root`) to `dest`, which must not exist.
 * A malformed or hostile archive is refused (STORE_CORRUPT) and nothing is left at `dest`.
 */
export async function unpackPath(file: string, root: string, dest: string, signal?: AbortSignal): Promise<void> {
  try {
    await unpackStream(createReadStream(file, { highWaterMark: SMALL_FILE }), root, dest, signal);
  } catch (e) {
    removeTree(dest);
    if (signal?.aborted) throw e;
    if (e instanceof KilnError) throw e;
    throw corrupt(root, (e as Error).message);
  }
}

const corrupt = (root: string, what: string) =>
  new KilnError("STORE_CORRUPT", `the archive of ${root} is damaged: ${what}`, "the cache that served it holds a bad file: remove it there (or push the path again), then run the command again", { path: root });

async function unpackStream(input: Readable, root: string, dest: string, signal?: AbortSignal): Promise<void> {
  const extract = tar.extract();
  const dirs = new Set<string>();
  const seen = new Set<string>();
  const target = (name: string): string => {
    const clean = name.replace(/\/$/, "");
    if (seen.has(clean)) throw corrupt(root, `${clean} occurs twice`);
    seen.add(clean);
    if (clean === root) {
      if (seen.size !== 1) throw corrupt(root, "the root is not the first entry");
      return dest;
    }
    if (!clean.startsWith(`${root}/`)) throw corrupt(root, `entry ${JSON.stringify(name)} is outside ${root}`);
    const parts = clean.slice(root.length + 1).split("/");
    if (parts.some((p) => p === "" || p === "." || p === "..")) throw corrupt(root, `entry ${JSON.stringify(name)} is not a plain relative name`);
    const parent = parts.length === 1 ? root : `${root}/${parts.slice(0, -1).join("/")}`;
    if (!dirs.has(parent)) throw corrupt(root, `entry ${JSON.stringify(name)} comes before its directory, or its parent is not one`);
    return join(dest, ...parts);
  };
  const done = pipeline(input, new DecompressStream(), extract, signal ? { signal } : {});
  extract.on("entry", (h, stream, next) => {
    // destroying the extractor rejects the pipeline with this error (next(err) would also throw it)
    const fail = (e: unknown) => extract.destroy(e as Error);
    stream.on("error", () => {}); // the same error, reported by the pipeline
    try {
      const at = target(h.name);
      const name = h.name.replace(/\/$/, "");
      switch (h.type) {
        case "directory":
          mkdirSync(at, { mode: 0o755 });
          dirs.add(name);
          stream.resume();
          stream.on("end", () => next());
          return;
        case "symlink":
          if (!h.linkname) throw corrupt(root, `symlink ${name} has no target`);
          symlinkSync(h.linkname, at);
          stream.resume();
          stream.on("end", () => next());
          return;
        case "file": {
          const mode = (h.mode ?? 0o444) & 0o100 ? 0o755 : 0o644;
          if ((h.size ?? 0) === 0) {
            writeFileSync(at, "", { mode });
            stream.resume();
            stream.on("end", () => next());
            return;
          }
          pipeline(stream, createWriteStream(at, { mode, flags: "wx" })).then(() => next(), fail);
          return;
        }
        default:
          throw corrupt(root, `entry ${name} is a ${h.type}: only files, directories and symlinks may be in a store path`);
      }
    } catch (e) {
      fail(e);
    }
  });
  await done;
  if (!seen.has(root)) throw corrupt(root, "it is empty");
}

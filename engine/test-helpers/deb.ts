// Debian packages made on the spot for tests: an ar archive with debian-binary, control.tar.gz
// and a data.tar built with tar-stream from a list of entries (any name, any type, so tests can
// write the hostile ones a real archive might hold).
import { writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { xz } from "@napi-rs/lzma";
import tar from "tar-stream";

export interface DebEntry {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "fifo";
  /** file content */
  data?: string;
  /** symlink target or hard link target */
  linkname?: string;
  mode?: number;
}

export async function tarOf(entries: DebEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    const mode = e.mode ?? (type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644);
    const header = { name: e.name, type, mode, mtime: new Date(1_700_000_000_000), uid: 0, gid: 0, uname: "root", gname: "root", ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) };
    if (type === "file") pack.entry(header, e.data ?? "");
    else pack.entry({ ...header, size: 0 });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function arMember(name: string, data: Buffer): Buffer {
  const field = (s: string, n: number) => s.padEnd(n, " ").slice(0, n);
  const header = field(name, 16) + field("1700000000", 12) + field("0", 6) + field("0", 6) + field("100644", 8) + field(String(data.length), 10) + "`\n";
  return Buffer.concat([Buffer.from(header, "latin1"), data, data.length % 2 ? Buffer.from("\n") : Buffer.alloc(0)]);
}

export type Compression = "xz" | "gz" | "none" | "zst";

/** Write a .deb of `entries` to `file`; the data member compressed as asked. */
export async function writeDeb(file: string, entries: DebEntry[], compression: Compression = "xz", pkg = "test-package"): Promise<void> {
  const control = await tarOf([
    { name: "./", type: "directory" },
    { name: "./control", data: `Package: ${pkg}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: Test <test@example.org>\nDescription: a test package\n` },
  ]);
  const plain = await tarOf(entries);
  const data =
    compression === "xz" ? { name: "data.tar.xz", bytes: await xz.compress(plain) }
    : compression === "gz" ? { name: "data.tar.gz", bytes: gzipSync(plain) }
    : compression === "zst" ? { name: "data.tar.zst", bytes: plain }
    : { name: "data.tar", bytes: plain };
  writeFileSync(file, Buffer.concat([
    Buffer.from("!<arch>\n"),
    arMember("debian-binary", Buffer.from("2.0\n")),
    arMember("control.tar.gz", gzipSync(control)),
    arMember(data.name, data.bytes),
  ]));
}

// A binary cache in a local directory (file:///DIR): a shared disk, a USB stick, a folder that
// some other server publishes.
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { CacheBackend } from "./backend.js";
import { unreachable } from "./cache-errors.js";

export class FileBackend implements CacheBackend {
  readonly url: string;
  constructor(private readonly dir: string) {
    this.url = `file://${dir}`;
  }

  private at(key: string): string {
    return join(this.dir, key);
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      return readFileSync(this.at(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw unreachable(this.url, `cannot read ${key}: ${(e as Error).message}`);
    }
  }

  async has(key: string): Promise<boolean> {
    return existsSync(this.at(key));
  }

  async download(key: string, dest: string, _signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<boolean> {
    if (!existsSync(this.at(key))) return false;
    copyFileSync(this.at(key), dest);
    onProgress?.(statSync(dest).size);
    return true;
  }

  async put(key: string, body: Buffer | { file: string; size: number }): Promise<void> {
    const dest = this.at(key);
    // written beside, then renamed: a reader never sees half a file
    const tmp = `${dest}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      mkdirSync(dirname(dest), { recursive: true });
      if (Buffer.isBuffer(body)) writeFileSync(tmp, body);
      else copyFileSync(body.file, tmp);
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw unreachable(this.url, `cannot write ${key}: ${(e as Error).message}`);
    }
  }
}

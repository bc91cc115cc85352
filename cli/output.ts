// Writing a command's output to fd 1 or 2 without Node's stream objects. process.stdout and
// process.stderr build a stream on first use (for a pipe, a socket with Node's net machinery;
// for a file, node:stream): ~2-4 ms of a command that answers in tens. A command that writes its
// output only through these (cli/fast.ts, kiln gc) never builds one, unless a write would block.
import { fstatSync, writeSync } from "node:fs";
import { isatty } from "node:tty";

/**
 * Whether fd 1 or 2 is a terminal, without building process.stdout/stderr, and without loading
 * node:tty (which loads node:net, ~5 ms) unless the descriptor is a character device: a pipe or
 * a file never is a terminal.
 */
export function isTerminal(fd: 1 | 2): boolean {
  try {
    return fstatSync(fd).isCharacterDevice() && isatty(fd);
  } catch {
    return false; // closed
  }
}

/**
 * Write to fd 1 or 2 directly. A descriptor that would block (non-blocking, full) gets the
 * stream, which queues; one whose reader is gone, nothing.
 */
const toStream = new Set<1 | 2>();
export function writeFd(fd: 1 | 2, s: string): void {
  const b = Buffer.from(s);
  const stream = () => (fd === 1 ? process.stdout : process.stderr);
  // once a write went to the stream, the later ones follow it there (in order)
  if (toStream.has(fd)) {
    stream().write(b);
    return;
  }
  let off = 0;
  try {
    while (off < b.length) off += writeSync(fd, b, off);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // the reader is gone (`| head -0`): the realize is answered all the same, as a full one would be
    if (code === "EPIPE") return;
    if (code !== "EAGAIN") throw e;
    toStream.add(fd);
    stream().write(b.subarray(off));
  }
}

/** The command's result, on stdout. */
export const writeOut = (s: string): void => writeFd(1, s);

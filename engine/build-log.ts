// A build's log: what the builder prints, written to the log file as it comes, split into lines
// for events, and its last lines kept for the failure message. A log that cannot be written (a
// full disk) does not crash anything: the lines still reach the events, and the error is kept
// for the realizer to report with the build.
import { closeSync, openSync, writeSync } from "node:fs";

const TAIL = 25;

export class BuildLog {
  readonly tail: string[] = [];
  /** why the log file could not be written, if it could not (ENOSPC, EIO...) */
  writeError: NodeJS.ErrnoException | undefined;
  private fd: number | undefined;
  private partial = "";

  constructor(
    readonly file: string,
    private readonly onLine: (line: string) => void,
  ) {
    try {
      this.fd = openSync(file, "w");
    } catch (e) {
      this.writeError = e as NodeJS.ErrnoException;
    }
  }

  /** Bound to be passed around as BuildIO.onOutput. */
  readonly write = (chunk: Buffer): void => {
    if (this.fd !== undefined) {
      try {
        writeSync(this.fd, chunk);
      } catch (e) {
        this.writeError = e as NodeJS.ErrnoException;
        this.closeFile();
      }
    }
    const lines = (this.partial + chunk.toString("utf8")).split("\n");
    this.partial = lines.pop()!;
    for (const l of lines) this.line(l);
  };

  /** Flush the last partial line and close the file. */
  close(): void {
    if (this.partial) {
      this.line(this.partial);
      this.partial = "";
    }
    this.closeFile();
  }

  private line(l: string): void {
    this.tail.push(l);
    if (this.tail.length > TAIL) this.tail.shift();
    this.onLine(l);
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      /* nothing more can be lost */
    }
    this.fd = undefined;
  }
}

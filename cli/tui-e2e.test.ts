// The TUI on a real terminal: the compiled kiln under tmux (a private tmux server per test), with
// no --reporter, so that the TUI is chosen because stderr is a TTY. capture-pane reads the screen.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { after, describe, test } from "node:test";
import { CLI, cleanup, copyFixture, tempDir } from "./test-helpers/kiln.js";

const haveTmux = spawnSync("tmux", ["-V"]).status === 0;

class Terminal {
  private readonly socket = `kiln-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(cwd: string, command: string[]) {
    const env = ["env", "-u", "KILN_STORE", "-u", "KILN_RECIPES", "-u", "KILN_MIRRORS", "-u", "KILN_BWRAP", "-u", "NODE_OPTIONS", "-u", "CI", "TERM=xterm-256color"];
    const line = [...env, ...command].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
    // the shell stays after kiln exits, so that the last screen and the exit code can be read
    this.tmux("new-session", "-d", "-x", "120", "-y", "40", "-c", cwd, `${line}; echo KILN_EXIT=$?; sleep 600`);
  }

  tmux(...args: string[]): string {
    return execFileSync("tmux", ["-L", this.socket, ...args], { encoding: "utf8" });
  }

  screen(): string {
    return this.tmux("capture-pane", "-p");
  }

  keys(...keys: string[]): void {
    this.tmux("send-keys", ...keys);
  }

  /** Poll the screen until pred holds (or fail after a generous deadline, with the screen). */
  async waitFor(what: string, pred: (screen: string) => boolean, ms = 120_000): Promise<string> {
    const until = Date.now() + ms;
    let s = "";
    while (Date.now() < until) {
      s = this.screen();
      if (pred(s)) return s;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}; the screen:\n${s}`);
  }

  close(): void {
    try {
      this.tmux("kill-server");
    } catch {
      /* already gone */
    }
  }
}

describe("TUI on a terminal (tmux)", { timeout: 300_000, skip: haveTmux ? false : "tmux is not installed" }, () => {
  after(cleanup);

  test("realize greeting: the nodes as they finish, the summary, the store path; exit 0", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    const t = new Terminal(cwd, [process.execPath, CLI, "--store", store, "realize", "greeting"]);
    try {
      const s = await t.waitFor("kiln to exit", (x) => /KILN_EXIT=\d+/.test(x));
      assert.match(s, /KILN_EXIT=0/, s);
      // each finished node printed once, in build order, with its duration
      const built = [...s.matchAll(/✓ built\s+(\S+)\s+\S+/g)].map((m) => m[1]);
      assert.deepEqual(built, ["libgreet", "hello", "greeting"], s);
      assert.match(s, /done: 3 built, 0 from the store, 0 failed in /);
      assert.match(s, /-greeting\n/);
      // not the plain reporter's lines
      assert.doesNotMatch(s, /planned 3 derivations/);
    } finally {
      t.close();
    }
  });

  test("the live view: the running builds, progress and the log tail; q cancels and quits (exit 130)", async () => {
    const cwd = copyFixture("slow");
    const store = tempDir("store");
    const t = new Terminal(cwd, [process.execPath, CLI, "--store", store, "realize", "slow", "slowToo"]);
    try {
      const live = await t.waitFor("both builds running", (x) => /2 running/.test(x) && /build starting/.test(x));
      assert.match(live, /kiln slow, slowToo\s+0\/2 done · 2 running · 0 waiting/);
      assert.match(live, /slow\s+» running/);
      assert.match(live, /slow-too\s+» running/);
      assert.match(live, /── slow(-too)?: running, 1 log lines ──/);
      assert.match(live, /q quit/);
      t.keys("q");
      const s = await t.waitFor("kiln to exit", (x) => /KILN_EXIT=\d+/.test(x), 60_000);
      assert.match(s, /KILN_EXIT=130/, s);
      assert.match(s, /cancelled: 0 built/);
      assert.match(s, /error: cancelled; nothing half-built was registered/);
    } finally {
      t.close();
    }
  });
});

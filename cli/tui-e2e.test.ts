// The TUI on a real terminal: the compiled kiln under tmux (a private tmux server per test), with
// no --reporter, so that the TUI is chosen because stderr is a TTY. capture-pane reads the screen.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { CLI, cleanup, copyFixture, realizeSeed, SEED_DEB_CACHE, seedNodeCount, tempDir, TEST_CONFIG, UNSET_FOR_TESTS } from "./test-helpers/kiln.js";

const haveTmux = spawnSync("tmux", ["-V"]).status === 0;

class Terminal {
  private readonly socket = `kiln-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(cwd: string, command: string[]) {
    // the environment test-helpers/kiln.ts gives every kiln (the fixtures' seed .debs from the
    // tests' cache, no cache or builder of the developer's), on a terminal, not in CI mode
    const env = ["env", ...[...UNSET_FOR_TESTS, "CI"].flatMap((k) => ["-u", k]), "TERM=xterm-256color", `KILN_CONFIG=${TEST_CONFIG}`, `KILN_MIRRORS=${SEED_DEB_CACHE}`];
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

  /** The screen with everything scrolled off it. */
  history(): string {
    return this.tmux("capture-pane", "-p", "-S", "-");
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
  // the stores below get the fixtures' seed first (realizeSeed), so that the screens show the
  // fixture's own builds; the seed's derivations count as "from the store"
  const seedNodes = seedNodeCount("seed-tcc");
  // a round after the first: the seed module is sealed (engine/module-records.ts; the terminal
  // runs kiln with its evaluation cache, as a user's does), its tree one node in the store
  const sealedSeed = 1;

  test("realize greeting: the nodes as they finish, the summary, the store path; exit 0", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    await realizeSeed("tcc", { cwd, store });
    const t = new Terminal(cwd, [process.execPath, CLI, "--store", store, "realize", "greeting"]);
    try {
      const s = await t.waitFor("kiln to exit", (x) => /KILN_EXIT=\d+/.test(x));
      assert.match(s, /KILN_EXIT=0/, s);
      // each finished node printed once, in build order, with its duration
      const built = [...s.matchAll(/✓ built\s+(\S+)\s+\S+/g)].map((m) => m[1]);
      assert.deepEqual(built, ["libgreet", "hello", "greeting"], s);
      assert.match(s, new RegExp(`done: 3 built, ${seedNodes} from the store, 0 failed in `));
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
    await realizeSeed("busybox", { cwd, store });
    const t = new Terminal(cwd, [process.execPath, CLI, "--store", store, "realize", "slow", "slowToo"]);
    try {
      const live = await t.waitFor("both builds running", (x) => /2 running/.test(x) && /build starting/.test(x));
      const cached = seedNodeCount("seed-busybox");
      assert.match(live, new RegExp(`kiln slow, slowToo\\s+${cached}/${2 + cached} done · 2 running · 0 waiting`), "the seed's derivations done (from the store), both builds running");
      assert.match(live, /slow\s+» running/);
      assert.match(live, /slow-too\s+» running/);
      assert.match(live, /── slow(-too)?: running, 1 log lines ──/);
      assert.match(live, /q quit/);
      t.keys("q");
      const s = await t.waitFor("kiln to exit", (x) => /KILN_EXIT=\d+/.test(x), 60_000);
      assert.match(s, /KILN_EXIT=130/, s);
      assert.match(s, new RegExp(`cancelled: 0 built, ${cached} from the store, 0 failed, 2 cancelled in `), "both running builds counted");
      assert.match(s, /error: cancelled; nothing half-built was registered/);
    } finally {
      t.close();
    }
  });

  test("realize --watch: one session; an edit rebuilds its dependents in round 2, a broken recipe shows its error and the watch goes on, w tells why", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    await realizeSeed("tcc", { cwd, store });
    const t = new Terminal(cwd, [process.execPath, CLI, "--store", store, "realize", "--watch", "greeting"]);
    const finishedNodes = (text: string, round: string) => {
      const lines = text.split("\n");
      const start = lines.findIndex((l) => l.startsWith(`── round ${round} ──`) || l.startsWith(`── round ${round}:`));
      assert.ok(start >= 0, `no round ${round} in:\n${text}`);
      const end = lines.findIndex((l, i) => i > start && /^(done: |round \d+ failed: )/.test(l));
      return lines.slice(start + 1, end).map((l) => /^. (\S+(?: \S+)?)\s+(\S+)/.exec(l)!).map((m) => `${m[1]} ${m[2]}`);
    };
    try {
      let s = await t.waitFor("the first round to end", (x) => /watch · round 1 done/.test(x) || /KILN_EXIT/.test(x));
      assert.deepEqual(finishedNodes(s, "1"), ["built libgreet", "built hello", "built greeting"], s);
      assert.match(s, new RegExp(`done: 3 built, ${seedNodes} from the store, 0 failed`));
      assert.match(s, /-greeting\n/, "the round's output, shown in the view");
      assert.match(s, /watch · round 1 done · watching \d+ files and folders · waiting for changes · q to stop/);
      // w: why the selected node (the target) was built
      t.keys("w");
      // worked out off the render path: the panel says so first, then shows it
      s = await t.waitFor("the why panel", (x) => /── why greeting.*\n(?!working out why)/.test(x));
      assert.match(s, /── why greeting \(built\) ── w close\ngreeting is new: no derivation of that name was ever built in this store/);

      // an edit to hello's program: round 2 in the same session, hello and greeting rebuilt, libgreet not
      const main = join(cwd, "src", "main.c");
      writeFileSync(main, readFileSync(main, "utf8").replace("greet(GREETING_TARGET);", 'greet(GREETING_TARGET);\n  greet("again");'));
      s = await t.waitFor("the second round to end", (x) => /watch · round 2 done/.test(x) || /KILN_EXIT/.test(x));
      const all = t.history();
      assert.deepEqual(finishedNodes(all, "2: changed src/main.c"), ["built hello", "built greeting"], all);
      assert.match(all, new RegExp(`── round 2: changed src/main\\.c ──[^]*done: 2 built, ${1 + sealedSeed} from the store, 0 failed`));
      assert.equal(all.split("── round 1 ──").length - 1, 1, "one session: round 1 is printed once, above round 2");
      assert.match(s, /libgreet\s+= cached/);
      // the panel stays open across rounds: now the target differs from its last build, through hello
      s = await t.waitFor("greeting's why in round 2", (x) => /── why greeting \(built\) ── w close\ngreeting differs/.test(x));
      assert.match(s, /── why greeting \(built\) ── w close\ngreeting differs from its last build \([0-9a-f]{12}…, built \d+ s ago\):\n {2}\[1\] source file src\/main\.c changed \(content \S+ → \S+\)\n {6}in hello/);
      // greeting's first input is its seed (collapsed here), the next one hello
      t.keys("j");
      await t.waitFor("the seed selected", (x) => /── why seed-tcc/.test(x));
      t.keys("Space");
      // one key at a time: keys sent together may reach the view as one chunk of input
      await t.waitFor("the seed collapsed", (x) => !/busybox-static-unpacked/.test(x));
      t.keys("j");
      s = await t.waitFor("the why panel of hello", (x) => /── why hello.*\n(?!working out why)/.test(x));
      assert.match(s, /hello differs from its last build \([0-9a-f]{12}…, built \d+ s ago\):\n {2}\[1\] source file src\/main\.c changed/);
      t.keys("w");

      // a broken recipe: its error in the view, and the watch goes on
      const recipe = join(cwd, "recipes", "index.ts");
      const good = readFileSync(recipe, "utf8");
      writeFileSync(recipe, `${good}\nexport const broken = (;\n`);
      s = await t.waitFor("the broken round to end", (x) => /watch · round 3 failed/.test(x) || /KILN_EXIT/.test(x));
      assert.match(s, /── round 3: changed recipes\/index\.ts ──\nround 3 failed: cannot compile the recipes/);
      assert.match(s, /watch · round 3 failed \(the error is above\) · watching \d+ files and folders · waiting for changes/);
      assert.doesNotMatch(s, /KILN_EXIT/);

      // fixed: round 4, everything from the store
      writeFileSync(recipe, good);
      s = await t.waitFor("the round after the fix", (x) => /watch · round 4 done/.test(x) || /KILN_EXIT/.test(x));
      assert.deepEqual(finishedNodes(s, "4: changed recipes/index.ts"), []);
      assert.match(s, new RegExp(`── round 4: changed recipes/index\\.ts ──\ndone: 0 built, ${3 + sealedSeed} from the store, 0 failed`));

      t.keys("q");
      s = await t.waitFor("kiln to exit", (x) => /KILN_EXIT=\d+/.test(x), 60_000);
      assert.match(s, /watch stopped after 4 rounds\n/);
      assert.match(s, /KILN_EXIT=130/);
    } finally {
      t.close();
    }
  });
});

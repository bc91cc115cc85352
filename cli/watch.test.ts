// kiln realize --watch (and its other name, kiln watch) on fixtures/hello: an edited source
// rebuilds exactly the derivations that depend on it; a broken recipe shows its error and the
// watch goes on; fixing it evaluates again. Rounds are read back from the reporters' output.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { buildStarts, cleanup, copyFixture, eventsOf, realizeSeed, seedNodeCount, startKiln, tempDir, type Running } from "./test-helpers/kiln.js";

/** Follow a running kiln's stderr: wait until it says something, fail if it exits first. */
function follow(run: Running) {
  let stderr = "";
  const waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];
  run.child.stderr!.on("data", (c: Buffer) => {
    stderr += c.toString();
    for (const w of [...waiters]) if (w.pred()) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  });
  run.child.on("close", () => waiters.splice(0).forEach((w) => w.resolve()));
  return {
    text: () => stderr,
    until: (pred: () => boolean, what: string) =>
      new Promise<void>((resolve) => (pred() ? resolve() : waiters.push({ pred, resolve }))).then(() => {
        assert.ok(pred(), `kiln exited before ${what}:\n${stderr}`);
      }),
  };
}

/** The plain reporter's lines of one round: from its `round N` line to its `round N done/failed` line. */
function roundLines(stderr: string, n: number): string[] {
  const lines = stderr.split("\n");
  const start = lines.findIndex((l) => new RegExp(`^\\[ *[\\d.]+s\\] round ${n}(:|$)`).test(l));
  const end = lines.findIndex((l) => new RegExp(`^\\[ *[\\d.]+s\\] round ${n} (done|failed);`).test(l));
  assert.ok(start >= 0 && end > start, `round ${n} is not complete in:\n${stderr}`);
  return lines.slice(start, end + 1).map((l) => l.replace(/^\[ *[\d.]+s\] /, ""));
}

const built = (lines: string[]) => lines.filter((l) => l.startsWith("building ")).map((l) => l.slice("building ".length));

describe("kiln realize --watch", { timeout: 300_000 }, () => {
  after(cleanup);

  test("plain: an edited source rebuilds its dependents and nothing else; a broken recipe does not end the watch", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    // the seed in the store first: the rounds then show the fixture's own builds
    await realizeSeed("tcc", { cwd, store });
    const seedNodes = seedNodeCount("seed-tcc");
    const run = startKiln(["--reporter", "plain", "realize", "--watch", "greeting"], { cwd, store });
    const out = follow(run);
    const ended = (n: number) => () => new RegExp(`\\] round ${n} (done|failed);`).test(out.text());
    try {
      await out.until(ended(1), "the first round");
      assert.deepEqual(built(roundLines(out.text(), 1)), ["libgreet", "hello", "greeting"]);
      assert.match(out.text(), /round 1 done; watching \d+ files and folders for changes/);

      // a real change to hello's program: hello and greeting (which runs it) rebuild, libgreet does not
      const main = join(cwd, "src", "main.c");
      writeFileSync(main, readFileSync(main, "utf8").replace("greet(GREETING_TARGET);", 'greet(GREETING_TARGET);\n  greet("again");'));
      await out.until(ended(2), "the round after the edit");
      const second = roundLines(out.text(), 2);
      assert.equal(second[0], "round 2: changed src/main.c");
      assert.deepEqual(built(second), ["hello", "greeting"]);
      assert.match(second.join("\n"), new RegExp(`done: 2 built, ${1 + seedNodes} from the store, 0 failed`));

      // a broken recipe: the error, and still watching
      const recipe = join(cwd, "recipes", "index.ts");
      const good = readFileSync(recipe, "utf8");
      writeFileSync(recipe, `${good}\nexport const broken = (;\n`);
      await out.until(ended(3), "the round with the broken recipe");
      const third = roundLines(out.text(), 3);
      assert.equal(third[0], "round 3: changed recipes/index.ts");
      assert.match(third.join("\n"), /error: cannot compile the recipes/);
      assert.match(third.at(-1)!, /^round 3 failed; watching/);
      assert.deepEqual(built(third), []);
      assert.equal(run.child.exitCode, null, "the watch goes on");

      // fixed again: evaluated and realized, everything from the store
      writeFileSync(recipe, good);
      await out.until(ended(4), "the round after the fix");
      const fourth = roundLines(out.text(), 4);
      assert.deepEqual(built(fourth), []);
      assert.match(fourth.join("\n"), new RegExp(`done: 0 built, ${3 + seedNodes} from the store, 0 failed`));
      assert.match(fourth.at(-1)!, /^round 4 done;/);
    } finally {
      run.child.kill("SIGINT");
    }
    const r = await run.done;
    assert.equal(r.code, 130);
    // one output line per round that realized the target (not the broken one), and ./result
    assert.equal(r.stdout.trim().split("\n").filter((l) => l.endsWith("-greeting")).length, 3);
    assert.match(readFileSync(join(cwd, "result", "greeting.txt"), "utf8"), /again/);
  });

  test("kiln watch is realize --watch; JSON: round and watching events around each round's events", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    const run = startKiln(["--reporter", "json", "watch", "greeting"], { cwd, store });
    try {
      const first = await run.waitFor((e) => e.type === "watching" && e.round === 1);
      assert.equal(first.type, "watching", "kiln exited before the first round ended");
      assert.deepEqual(run.events[0], { ...run.events[0], type: "round", round: 1, changed: [] });
      assert.equal((first.outputs as string[]).length, 1);
      assert.match((first.outputs as string[])[0]!, /-greeting$/);
      assert.equal(first.error, undefined);

      const mark = run.events.length;
      const greet = join(cwd, "src", "greet.c");
      writeFileSync(greet, readFileSync(greet, "utf8").replace("hello, %s", "hi, %s"));
      const second = await run.waitFor((e) => e.type === "watching" && e.round === 2);
      assert.equal(second.type, "watching", "kiln exited before the second round ended");
      const round = run.events.slice(mark);
      assert.deepEqual(round[0], { ...round[0], type: "round", round: 2, changed: ["src/greet.c"] });
      // greet.c is libgreet's: the whole chain rebuilds (the greeting's text changed)
      assert.deepEqual(buildStarts(round).map((e) => e.node!.name), ["libgreet", "hello", "greeting"]);
      assert.equal(eventsOf(round, "finished").length, 1);
      assert.notEqual((second.outputs as string[])[0], (first.outputs as string[])[0]);
    } finally {
      run.child.kill("SIGINT");
    }
    assert.equal((await run.done).code, 130);
  });
});

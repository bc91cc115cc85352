// kiln watch on fixtures/hello: an edited source rebuilds exactly the derivations that depend on
// it; a broken recipe shows its error and the watch goes on; fixing it evaluates again.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { buildStarts, cleanup, copyFixture, eventsOf, startKiln, tempDir } from "./test-helpers/kiln.js";

describe("kiln watch", { timeout: 300_000 }, () => {
  after(cleanup);

  test("edit a source: its dependents rebuild, nothing else; a broken recipe does not end the watch", async () => {
    const cwd = copyFixture("hello");
    const store = tempDir("store");
    const run = startKiln(["--reporter", "json", "watch", "greeting"], { cwd, store });
    let stderr = "";
    const waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];
    run.child.stderr!.on("data", (c: Buffer) => {
      stderr += c.toString();
      for (const w of [...waiters]) if (w.pred()) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
    });
    run.child.on("close", () => waiters.splice(0).forEach((w) => w.resolve()));
    const idle = (n: number) => stderr.split("waiting for changes").length - 1 >= n;
    const until = (pred: () => boolean, what: string) =>
      new Promise<void>((resolve) => (pred() ? resolve() : waiters.push({ pred, resolve }))).then(() => {
        assert.ok(pred(), `kiln exited before ${what}:\n${stderr}`);
      });

    try {
      await until(() => idle(1), "the first round");
      assert.deepEqual(buildStarts(run.events).map((e) => e.node!.name), ["libgreet", "hello", "greeting"]);

      // a real change to hello's program: hello and greeting (which runs it) rebuild, libgreet does not
      let mark = run.events.length;
      const main = join(cwd, "src", "main.c");
      writeFileSync(main, readFileSync(main, "utf8").replace("greet(GREETING_TARGET);", 'greet(GREETING_TARGET);\n  greet("again");'));
      await until(() => idle(2), "the round after the edit");
      const second = run.events.slice(mark);
      assert.deepEqual(buildStarts(second).map((e) => e.node!.name), ["hello", "greeting"]);
      assert.deepEqual(eventsOf(second, "cached").map((e) => e.node!.name), ["libgreet"]);
      assert.match(stderr, /kiln watch: changed: src\/main\.c/);

      // a broken recipe: the error, and still watching
      mark = run.events.length;
      const recipe = join(cwd, "recipes", "index.ts");
      const good = readFileSync(recipe, "utf8");
      writeFileSync(recipe, `${good}\nexport const broken = (;\n`);
      await until(() => idle(3), "the round with the broken recipe");
      assert.match(stderr, /error: cannot compile the recipes/);
      assert.equal(run.child.exitCode, null, "the watch goes on");
      assert.deepEqual(buildStarts(run.events.slice(mark)), []);

      // fixed again: evaluated and realized, everything from the store
      mark = run.events.length;
      writeFileSync(recipe, good);
      await until(() => idle(4), "the round after the fix");
      const fixed = run.events.slice(mark);
      assert.equal(eventsOf(fixed, "finished").length, 1);
      assert.deepEqual(buildStarts(fixed), []);
      assert.equal(eventsOf(fixed, "cached").length, 3);
    } finally {
      run.child.kill("SIGINT");
    }
    const r = await run.done;
    assert.equal(r.code, 130);
    // one output line per successful round: three rounds realized greeting
    assert.equal(r.stdout.trim().split("\n").filter((l) => l.endsWith("-greeting")).length, 3);
  });
});

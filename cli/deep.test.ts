// A 3000-deep chain: realize must reach the bottom (and report its failure, skipping the rest)
// instead of overflowing the stack on the way down.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { cleanup, copyFixture, eventsOf, kiln, tempDir, parseEvents } from "./test-helpers/kiln.js";

describe("deep graphs", { timeout: 120_000 }, () => {
  after(cleanup);

  test("a 3000-deep chain is walked to its bottom: one failure, 2999 skipped, exit 1", async () => {
    const cwd = copyFixture("deep");
    const store = tempDir("store");
    const r = await kiln(["--reporter", "json", "realize", "--no-link", "top"], { cwd, store });
    assert.equal(r.code, 1, r.stderr.slice(-2000));
    const events = parseEvents(r.stderr);
    assert.deepEqual(eventsOf(events, "failed").map((e) => e.node!.name), ["link-0"]);
    assert.equal(eventsOf(events, "skipped").length, 2999);
  });
});

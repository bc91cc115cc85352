// The slow tier (npm run test:slow): pi4-llm-os built whole in two stores at different host
// paths, the llama.cpp runtime included, every output compared, and `kiln check` of the runtime.
// Three more builds of llama.cpp (10-16 minutes each on a 2-core machine) and two of the kernel:
// too slow for npm test, which builds the runtime once (pi4.test.ts).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, eventsOf, kilnJson, REPO, SEED_DEB_CACHE, storeContents, tempDir } from "../../cli/test-helpers/kiln.js";
import { TINY_MODEL_TEXT_SHA256 } from "./index.js";

const TARGETS = ["pi4-llm-os", "pi4-llm-os.board", "pi4-llm-os.tests.llm"];

describe("pi4-llm-os, the whole image reproducible", { timeout: 3 * 60 * 60_000 }, () => {
  const storeA = join(tempDir("store-a"), "kiln-store");
  const storeB = join(tempDir("elsewhere"), "deeper", "store-b");
  const llmReport: Record<string, Record<string, unknown>> = {};

  before(async () => {
    for (const store of [storeA, storeB]) {
      const r = await kilnJson(["realize", "--no-link", "--json", ...TARGETS], { cwd: REPO, store, env: { KILN_MIRRORS: SEED_DEB_CACHE } });
      const out = JSON.parse(r.stdout) as { outputs: Array<{ target: string; path: string }> };
      const dir = out.outputs.find((o) => o.target === "pi4-llm-os.tests.llm")!.path;
      llmReport[store] = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as Record<string, unknown>;
    }
  });
  after(cleanup);

  // The LLM test's output is its report, with the tokens/s and memory measured on that run: the
  // one output that cannot be the same bytes twice (its generated text is, below)
  const measured = (p: string) => p.slice(33) === "pi4-llm-os-llm-test";

  test("two stores at different host paths give the same digest for every output, the runtime and the images included", () => {
    const a = storeContents(storeA);
    const b = storeContents(storeB);
    const names = [...a.keys()].map((p) => p.slice(33));
    for (const n of ["llama.cpp-de3ff81-aarch64", "pi4-llm-os-rootfs", "pi4-llm-os-disk.img", "pi4-llm-os-board-sdcard.img", "kiln-tiny-llama-q4_0.gguf"]) {
      assert.ok(names.includes(n), `${n} is in the store`);
    }
    for (const s of [a, b]) assert.equal([...s.keys()].filter(measured).length, 1, "one LLM test report in each store");
    assert.deepEqual([...b.keys()].filter((p) => !measured(p)).sort(), [...a.keys()].filter((p) => !measured(p)).sort());
    for (const [p, info] of a) if (!measured(p)) assert.equal(b.get(p)!.digest, info.digest, p);
  });

  test("the model gives the pinned text in both", () => {
    for (const r of Object.values(llmReport)) {
      assert.equal(r.passed, true);
      assert.equal(r.textSha256, TINY_MODEL_TEXT_SHA256);
    }
  });

  test("kiln check rebuilds the runtime bit-identically", async () => {
    const r = await kilnJson(["check", "--json", "pi4-llm-os.llama"], { cwd: REPO, store: storeA });
    const res = JSON.parse(r.stdout) as { checked: number; identical: number };
    assert.deepEqual([res.checked, res.identical], [1, 1]);
    assert.equal(eventsOf(r.events, "checked").length, 1);
  });
});

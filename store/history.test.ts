// History's own collection policy (collectHistory) on a real temporary store: which target
// realisations and build records go, which are kept and why, and which log files are removed.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { collectHistory, recordedOutputs, type TargetRealisation } from "./history.js";
import { removeTree, type StorePathName } from "./paths.js";
import { tablesOf, LocalStore } from "./local-store.js";

const temps: string[] = [];
after(() => temps.forEach(removeTree));

function setUp() {
  const root = mkdtempSync(join(tmpdir(), "kiln-history-"));
  temps.push(root);
  const s = LocalStore.open(root);
  const dir = join(s.scratchDir("t"), "live");
  mkdirSync(dir);
  writeFileSync(join(dir, "f"), "live");
  const live = s.addOutput({ scratch: dir, name: "live", candidates: [] }, () => {}).path;
  const gone = "0000000000000000000000000000000a-gone" as StorePathName;

  const log = (key: string, text: string) => {
    mkdirSync(join(s.logDir, key.slice(0, 2)), { recursive: true });
    writeFileSync(join(s.logDir, key), text);
    return join(s.logDir, key);
  };
  const build = (resolved: string, status: string, at: number, outputs: Record<string, string> | null, logFile: string | null) =>
    tablesOf(s).db.prepare("INSERT INTO builds (drv_hash, resolved_hash, name, started_at, ended_at, status, log_file, inputs, outputs) VALUES (?, ?, 'x', ?, ?, ?, ?, '{}', ?)")
      .run(`drv-${resolved}`, resolved, at - 1, status === "running" ? null : at, status, logFile, outputs ? JSON.stringify(outputs) : null);
  build("aa01", "built", 100, { out: gone }, log("aa/aa01.log", "one\n")); // old, output gone: goes with its log
  build("bb02", "built", 100, { out: live }, log("bb/bb02.log", "two\n")); // its output is in the store: kept
  build("cc03", "built", 100, { out: gone }, log("cc/cc03.log", "three\n")); // why needs it: kept
  build("dd04", "running", 100, null, log("dd/dd04.log", "four\n")); // still running: kept
  build("ee05", "failed", 100, null, log("ee/ee05.log", "five\n")); // goes, but a newer record shares its log
  build("ee05", "failed", 5000, null, join(s.logDir, "ee/ee05.log"));
  log("ff/ff06.log", "a log no record refers to: a crash between commit and unlink\n");
  writeFileSync(join(s.logDir, "README"), "not a build log");

  const tr = (target: string, drv: string, at: number) =>
    tablesOf(s).db.prepare("INSERT INTO target_realisations (target, output, drv_hash, resolved_hash, path, recipes_rev, recipes_dirty, at) VALUES (?, 'out', ?, NULL, ?, NULL, NULL, ?)")
      .run(target, drv, live, at);
  tr("t", "X", 10);
  tr("t", "X", 20);
  tr("t", "Y", 30); // what why compares the latest with: kept
  tr("t", "Z", 40); // the latest: kept
  tr("u", "U", 10); // the only one: kept
  tr("v", "A", 10);
  tr("v", "A", 2000); // the latest; the older one has the same derivation, so why needs it not
  return { s, live, gone };
}

describe("collectHistory", () => {
  test("deletes old rows and unreferenced logs; keeps what why compares, builds of live outputs, running builds", () => {
    const { s } = setUp();
    let seen: TargetRealisation[] = [];
    const opts = {
      before: 1000,
      keepResolved: (kept: TargetRealisation[]) => {
        seen = kept;
        return new Set(["cc03"]);
      },
    };
    const rows = () => tablesOf(s).db.prepare("SELECT target, drv_hash AS drv FROM target_realisations ORDER BY id").all();
    const builds = () => tablesOf(s).db.prepare("SELECT resolved_hash AS r, status FROM builds ORDER BY id").all();
    const before = { rows: rows(), builds: builds() };

    const dry = collectHistory(s, { ...opts, dryRun: true });
    assert.deepEqual(dry, { targetRows: 3, buildRows: 2, logFiles: 2, logBytes: 4 + 61, targets: 3 });
    assert.deepEqual({ rows: rows(), builds: builds() }, before, "a dry run deletes nothing");
    assert.ok(existsSync(join(s.logDir, "ff/ff06.log")));

    const r = collectHistory(s, opts);
    assert.deepEqual(r, dry);
    assert.deepEqual(seen.map((k) => `${k.target}:${k.drvHash}`).sort(), ["t:Y", "t:Z", "u:U", "v:A"]);
    assert.deepEqual(rows(), [{ target: "t", drv: "Y" }, { target: "t", drv: "Z" }, { target: "u", drv: "U" }, { target: "v", drv: "A" }]);
    assert.deepEqual(builds(), [
      { r: "bb02", status: "built" }, { r: "cc03", status: "built" }, { r: "dd04", status: "running" }, { r: "ee05", status: "failed" },
    ]);
    for (const k of ["aa/aa01.log", "ff/ff06.log"]) assert.ok(!existsSync(join(s.logDir, k)), `${k} removed`);
    for (const k of ["bb/bb02.log", "cc/cc03.log", "dd/dd04.log", "ee/ee05.log", "README"]) assert.ok(existsSync(join(s.logDir, k)), `${k} kept`);

    // nothing left to do: a second run (or one after a crash) finds nothing
    assert.deepEqual(collectHistory(s, opts), { targetRows: 0, buildRows: 0, logFiles: 0, logBytes: 0, targets: 3 });
    s.close();
  });

  test("recordedOutputs: what a resolved derivation's latest successful build produced, collected or not", () => {
    const { s, gone } = setUp();
    assert.deepEqual(recordedOutputs(s, "cc03"), { out: gone });
    assert.equal(recordedOutputs(s, "ee05"), undefined, "failed builds produced nothing");
    assert.equal(recordedOutputs(s, "nope"), undefined);
    s.close();
  });
});

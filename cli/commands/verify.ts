// kiln verify: SQLite's checks of the store database, every valid path re-hashed against its
// recorded digest, and the store directory's unregistered entries. --repair recovers a lost or
// damaged database from its backup and makes the database agree with the disk (store/verify.ts).
import { describeCheck } from "../../store/recovery.js";
import { verifyStore } from "../../store/verify.js";
import { defineCommand } from "../command.js";
import { EXIT } from "../run.js";
import { dateText } from "../units.js";

export const verifyCommand = defineCommand({
  command: "verify",
  describe: "check the store database and re-hash every store path; report corruption, missing and unregistered paths (--repair: fix them)",
  options: (y) => y
    .option("json", { type: "boolean" })
    .option("repair", {
      type: "boolean",
      describe: "recover a lost or damaged database from its backup, forget missing or corrupt paths (the next realize builds them again) and register intact unregistered ones again by re-hashing them",
    }),
  open: (argv) => ({ repair: Boolean(argv.repair) }),
  run: async (argv, ctx) => {
    const repair = Boolean(argv.repair);
    const store = ctx.store;
    const r = verifyStore(store, { repair, now: ctx.clock() });
    const dbOk = r.database.integrity.length === 0 && r.database.foreignKeys.length === 0;
    const ok = dbOk && (repair || (r.corrupt.length === 0 && r.missing.length === 0));
    const host = (p: string) => store.hostPath(p as never);
    const rec = store.recovery;
    // a repaired database is the one to keep from now on
    if (repair && dbOk && (rec || r.repair!.invalidated.length || r.repair!.registered.length || r.repair!.pinned.length)) store.backup();
    if (argv.json) {
      process.stdout.write(JSON.stringify({
        database: { ok: dbOk, ...r.database },
        checked: r.checked,
        corrupt: r.corrupt.map((c) => ({ ...c, path: host(c.path) })),
        missing: r.missing.map(host),
        unregistered: r.strays.map((s) => host(s.path)),
        ...(rec ? { recovery: rec } : {}),
        ...(r.repair ? { repair: { ...r.repair, strays: r.strays.map((s) => ({ path: host(s.path), why: s.why })) } } : {}),
        ok,
      }, null, 2) + "\n");
      return ok ? EXIT.ok : EXIT.failed;
    }
    const out: string[] = [];
    if (rec) {
      out.push(`the store database was not usable: ${rec.problem}`);
      if (rec.keptAside.length) out.push(`  its files were kept as ${rec.keptAside.join(", ")}`);
      out.push(rec.restored
        ? `  restored its backup ${rec.restored.file}, written ${dateText(rec.restored.writtenAt)}: roots, pins, profiles and history as they were then`
        : `  no backup could be restored (${rec.backupProblem}): started a new database; roots, pins, profiles and history are lost`);
    }
    out.push(dbOk ? "database: SQLite's integrity and foreign-key checks pass" : `DAMAGED  database ${store.root}/db.sqlite: ${describeCheck(r.database)}`);
    out.push(`checked ${r.checked} store paths`);
    for (const c of r.corrupt) out.push(`CORRUPT  ${host(c.path)}\n  expected ${c.expected}\n  actual   ${c.actual}`);
    for (const m of r.missing) out.push(`MISSING  ${host(m)}`);
    if (r.repair) {
      const rp = r.repair;
      if (rp.invalidated.length) out.push(`forgot ${rp.invalidated.length} path(s) (missing, corrupt, or referring to one): ${rp.invalidated.join(", ")}; the next realize builds them again`);
      if (rp.removed.length) out.push(`deleted ${rp.removed.length} corrupt path(s)`);
      if (rp.registered.length) out.push(`registered ${rp.registered.length} intact path(s) found on disk again (re-hashed): ${rp.registered.join(", ")}`);
      for (const p of rp.pinned) out.push(`pinned ${p.pin} -> ${host(p.path)} (a profile generation the database did not know; kiln pin rm ${p.pin} to let it go)`);
      for (const s of r.strays) out.push(`stray    ${host(s.path)} (not registered: ${s.why}; collected by gc)`);
    } else {
      for (const s of r.strays) out.push(`stray    ${host(s.path)} (not registered: left by an interrupted build or gc; harmless, collected by gc)`);
    }
    if (ok) out.push(repair ? "store is consistent (repaired)" : "store is consistent");
    else if (!dbOk) out.push(`the database is damaged: run \`kiln verify --repair\` (it keeps the damaged file aside and restores the backup)`);
    else out.push(`${r.corrupt.length} corrupt, ${r.missing.length} missing: \`kiln verify --repair\` forgets them so that the next realize builds them again`);
    process.stdout.write(out.join("\n") + "\n");
    return ok ? EXIT.ok : EXIT.failed;
  },
});

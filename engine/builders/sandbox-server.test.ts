// The sandbox server (kiln-sandbox --serve, started by SandboxServer): builds started through it
// without a namespace of their own (an empty overlay), so that what is tested is the server: the
// program, its descriptors, output, exit, kill, and how a setup failure is told from a build's;
// then the sandbox the server makes itself from bubblewrap's options (cli/sandbox.test.ts probes
// it through real builds, with the overlay).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { KilnError } from "../../store/errors.js";
import { SandboxBuilder, sandboxLaunch, storeViewOf } from "./sandbox.js";
import type { BuildRequest } from "../build-request.js";
import { findOnPath } from "../hosttools.js";
import { scratchRemoved } from "../../store/scratch.js";
import { SandboxServer, serveOnce, waitStatus, type ServerLaunch } from "./sandbox-server.js";

const helper = fileURLToPath(new URL("../../dist/kiln-sandbox", import.meta.url));
const skip = existsSync(helper) ? false : "dist/kiln-sandbox was not built: npm run build found no C compiler";

describe("sandbox server", { skip }, () => {
  const server = new SandboxServer(helper);
  const dir = mkdtempSync(join(tmpdir(), "kiln-server-"));
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(script: string, o: Partial<ServerLaunch> = {}, signal = new AbortController().signal) {
    const chunks: Buffer[] = [];
    const r = await server.run({ cwd: dir, kind: "process", overlay: "", argv: ["/bin/sh", "-c", script], options: Buffer.alloc(0), ...o }, (c) => chunks.push(c), signal);
    return { ...r, output: Buffer.concat(chunks).toString() };
  }

  test("a build runs in its working directory with an empty environment, umask 022, its options on fd 3, nothing else open, stdout and stderr in one stream", async () => {
    const r = await run('pwd; env | grep -v "^PWD=" | grep -v "^SHLVL=" | grep -v "^_=" | wc -l; umask; cat <&3; echo; ls /proc/self/fd | sort -n | tr "\\n" " "; echo; echo err >&2; echo out; exit 7',
      { options: Buffer.from("--ro-bind\0/a\0/b\0") });
    assert.deepEqual({ code: r.exitCode, signal: r.signal, setup: r.setupError }, { code: 7, signal: null, setup: undefined });
    const lines = r.output.split("\n");
    assert.equal(lines[0], dir);
    assert.equal(lines[1], "0", "no variable from kiln's environment");
    assert.equal(lines[2], "0022");
    assert.equal(lines[3], "--ro-bind\0/a\0/b\0");
    // 0-3, and the one ls opened to list them
    assert.match(lines[4]!, /^0 1 2 3 \d+ $/);
    assert.deepEqual(lines.slice(5), ["err", "out", ""]);
  });

  test("builds run side by side, each output whole and its own (1 MiB through the server's frames)", async () => {
    const rs = await Promise.all([0, 1, 2, 3].map((i) => run(`head -c 1048576 /dev/zero | tr '\\0' '${i}'; exit ${i}`)));
    for (const [i, r] of rs.entries()) {
      assert.equal(r.exitCode, i);
      assert.equal(r.output.length, 1 << 20);
      assert.ok(!/[^0-9]/.test(r.output) && r.output === String(i).repeat(1 << 20), `build ${i}'s output is its own`);
    }
  });

  test("abort kills the build's process group; a signal is reported as such", async () => {
    const stop = new AbortController();
    const started = Date.now();
    const p = run("sleep 30 & sleep 30; echo never", {}, stop.signal);
    setTimeout(() => stop.abort(), 200);
    const r = await p;
    assert.equal(r.signal, "SIGKILL");
    assert.equal(r.exitCode, null);
    assert.ok(Date.now() - started < 10_000);
    assert.equal((await run("kill -TERM $$")).signal, "SIGTERM");
  });

  test("a kill that comes with the request, before the build has its own process group, still kills it", async () => {
    for (let i = 0; i < 5; i++) {
      const stop = new AbortController();
      stop.abort();
      const r = await run("sleep 2; echo finished", {}, stop.signal);
      assert.equal(r.signal, "SIGKILL");
      assert.doesNotMatch(r.output, /finished/);
    }
  });

  test("a sandbox that cannot be set up says so, apart from the build's output; a build cannot fake it", async () => {
    const bad = await run("true", { cwd: join(dir, "nonexistent") });
    assert.equal(bad.exitCode, 125);
    assert.match(bad.setupError!, /^kiln-sandbox: chdir .*nonexistent: No such file or directory$/);
    const missing = await run("true", { argv: [join(dir, "no-such-program")] });
    assert.match(missing.setupError!, /^kiln-sandbox: exec .*no-such-program: No such file or directory$/);
    const overlay = await run("true", { overlay: "lowerdir=nonexistent,upperdir=upper,workdir=work,userxattr" });
    assert.match(overlay.setupError!, /^kiln-sandbox: (the build's overlay could not be mounted|unshare|setgroups|uid_map): /);
    const faked = await run("echo \"kiln-sandbox: the build's overlay could not be mounted: faked\"; exit 125");
    assert.equal(faked.exitCode, 125);
    assert.equal(faked.setupError, undefined, "what a build prints is its output, whatever it says");
    assert.match(faked.output, /faked/);
  });

  test("closing the server kills the builds it runs", async () => {
    const s = new SandboxServer(helper);
    const p = s.run({ cwd: dir, kind: "process", overlay: "", argv: ["/bin/sh", "-c", "sleep 30"], options: Buffer.alloc(0) }, () => {}, new AbortController().signal);
    setTimeout(() => s.close(), 200);
    const r = await p;
    assert.equal(r.signal, "SIGKILL");
  });

  test("serveOnce: a server given one request and no more stdin runs the build to its end (the store view's probe)", () => {
    const r = serveOnce(helper, { cwd: dir, kind: "process", overlay: "", argv: ["/bin/sh", "-c", "sleep 0.2; echo hi; exit 3"], options: Buffer.alloc(0) });
    assert.deepEqual(r, { exitCode: 3, signal: null, output: "hi\n" });
    const bad = serveOnce(helper, { cwd: join(dir, "nonexistent"), kind: "process", overlay: "", argv: ["/bin/true"], options: Buffer.alloc(0) });
    assert.equal(bad.exitCode, 125);
    assert.match(bad.setupError!, /^kiln-sandbox: chdir /);
    assert.match(serveOnce(join(dir, "no-such-helper"), { cwd: dir, kind: "process", overlay: "", argv: ["/bin/true"], options: Buffer.alloc(0) }).error!, /ENOENT/);
  });

  test("remove: a tree goes whole in a child of the server, read-only directories and all; a path already gone is no error", async () => {
    const tree = join(dir, "scratch");
    mkdirSync(join(tree, "upper", "out", "deep"), { recursive: true });
    writeFileSync(join(tree, "upper", "out", "deep", "f"), "x");
    symlinkSync("/etc/passwd", join(tree, "upper", "link"));
    chmodSync(join(tree, "upper", "out", "deep"), 0o555);
    chmodSync(join(tree, "upper", "out"), 0o555);
    await server.remove(tree);
    assert.equal(existsSync(tree), false);
    assert.equal(existsSync("/etc/passwd"), true, "a link is removed, not followed");
    await server.remove(tree);

    // root unlinks in read-only directories anyway: the server, as the tree's owner and no more,
    // must make them writable first (a failed build's outputs are 0555)
    const owned = join(dir, "owned");
    mkdirSync(join(owned, "out", "deep"), { recursive: true });
    writeFileSync(join(owned, "out", "deep", "f"), "x");
    const user = process.getuid?.() === 0 ? 65534 : process.getuid!();
    if (user !== process.getuid?.()) for (const p of [dir, owned, join(owned, "out"), join(owned, "out", "deep"), join(owned, "out", "deep", "f")]) chownSync(p, user, user);
    chmodSync(join(owned, "out", "deep"), 0o555);
    chmodSync(join(owned, "out"), 0o555);
    const req = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.from("R"), Buffer.from([7, 0, 0, 0]), Buffer.from(`${owned}\0`)]);
    req.writeUInt32LE(req.length - 4, 0);
    // a copy the user can reach: the checkout may sit in a directory only its owner can enter
    const own = join(dir, "kiln-sandbox");
    copyFileSync(helper, own);
    chmodSync(own, 0o755);
    const r = spawnSync(own, ["--serve"], { input: req, uid: user, gid: user, env: {} });
    assert.equal(r.status, 0, String(r.error ?? r.stderr));
    assert.equal(r.stdout.subarray(4, 5).toString(), "D");
    assert.equal(r.stdout.readUInt32LE(9), 0, "the removal's wait status: exit 0");
    assert.equal(existsSync(owned), false);
  });

  test("raw wait statuses read as Node's exit codes and signals", () => {
    assert.deepEqual(waitStatus(3 << 8), { exitCode: 3, signal: null });
    assert.deepEqual(waitStatus(9), { exitCode: null, signal: "SIGKILL" });
    assert.deepEqual(waitStatus(15 | 0x80), { exitCode: null, signal: "SIGTERM" }, "a core dump's bit aside");
  });
});

describe("sandboxLaunch", () => {
  test("a NUL byte in a request's command or environment is refused: it would split into options of the build's choosing", () => {
    const dir = mkdtempSync(join(tmpdir(), "kiln-launch-"));
    try {
      const req = (env: Record<string, string>, args: string[]) => ({
        builder: "/bin/sh", args, env, inputs: [], tools: {}, network: false,
        scratch: mkdtempSync(join(dir, "s-")), storeDir: join(dir, "store"), buildCores: 1,
      });
      assert.ok(sandboxLaunch("bwrap", req({ A: "b" }, ["-c", "true"])).options.includes("--clearenv"));
      for (const r of [req({ A: "b\0--bind\0/\0/host" }, ["-c", "true"]), req({}, ["-c", "x\0--bind\0/\0/host"])]) {
        assert.throws(() => sandboxLaunch("bwrap", r), (e: unknown) => e instanceof KilnError && e.code === "RECIPE_INVALID" && /NUL byte/.test(e.message));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the server's own sandbox (kind \"sandbox\")", { skip }, () => {
  const server = new SandboxServer(helper);
  const dir = mkdtempSync(join(tmpdir(), "kiln-server-sandbox-"));
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const usr = ["--ro-bind", "/usr", "/usr", ...["bin", "sbin", "lib", "lib64"].filter((d) => existsSync(`/usr/${d}`)).flatMap((d) => ["--symlink", `usr/${d}`, `/${d}`])];

  async function sandboxed(argv: string[], options: string[], signal = new AbortController().signal) {
    const chunks: Buffer[] = [];
    const r = await server.run({ kind: "sandbox", cwd: dir, overlay: "", argv, options: Buffer.from(options.map((o) => `${o}\0`).join("")) }, (c) => chunks.push(c), signal);
    return { ...r, output: Buffer.concat(chunks).toString() };
  }

  test("bubblewrap's options: the uid and gid asked (nothing else mapped), its hostname, no capabilities, a PID namespace whose pid 1 names no host path, loopback only, umask 022, only the environment given, read-only binds, --perms, --chdir", async () => {
    mkdirSync(join(dir, "out"));
    writeFileSync(join(dir, "f"), "bound file\n");
    const script = [
      "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/sys/kernel/hostname",
      "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status",
      "echo pid $$; echo init $(tr '\\0' ' ' < /proc/1/cmdline)",
      "echo net $(tail -n +3 /proc/net/dev | cut -d: -f1) $(grep -c ' 127.0.0.1$' /proc/net/fib_trie) $(cat /sys/class/net/lo/flags 2>/dev/null || echo no-sysfs)",
      "umask; pwd; stat -c %a /build; env | grep -v -E '^(PWD|SHLVL|_)=' | sort",
      "touch /usr/kiln-probe 2>/dev/null && echo usr-writable || echo usr-read-only",
      "cat /etc/f; echo written > /out/o; ls /",
    ].join("; ");
    const r = await sandboxed(["/bin/sh", "-c", script], [
      "--unshare-all", "--die-with-parent", "--new-session", "--uid", "1000", "--gid", "1000", "--hostname", "kiln",
      ...usr, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/etc", "--ro-bind", join(dir, "f"), "/etc/f",
      "--bind", join(dir, "out"), "/out", "--perms", "0700", "--tmpfs", "/build", "--chdir", "/build",
      "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "KILN_PROBE", "a value",
    ]);
    assert.equal(r.setupError, undefined, r.setupError);
    assert.equal(r.exitCode, 0, r.output);
    const uid = process.getuid!(), gid = process.getgid!();
    const lines = r.output.split("\n").map((l) => l.trim().replace(/\s+/g, " "));
    assert.deepEqual(lines.slice(0, 5), ["1000", "1000", `1000 ${uid} 1`, `1000 ${gid} 1`, "kiln"]);
    for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.ok(lines.includes(`${cap}: 0000000000000000`), `${cap} is empty:\n${r.output}`);
    assert.ok(lines.includes("NoNewPrivs: 1"), r.output);
    assert.ok(!lines.includes("pid 1"), "the build is not the namespace's pid 1 (a process that reaps and waits is)");
    assert.ok(lines.includes("init kiln-sandbox --serve"), `pid 1's command line names no host path:\n${r.output}`);
    const net = lines.find((l) => l.startsWith("net "))!.split(" ");
    assert.deepEqual(net.slice(0, 2), ["net", "lo"], `loopback alone:\n${r.output}`);
    assert.ok(Number(net[2]) > 0, `loopback has 127.0.0.1 (it is up):\n${r.output}`);
    const at = lines.indexOf("0022");
    assert.ok(at > 0, r.output);
    assert.deepEqual(lines.slice(at, at + 5), ["0022", "/build", "700", "KILN_PROBE=a value", "PATH=/usr/bin:/bin"]);
    assert.ok(lines.includes("usr-read-only") && lines.includes("bound file"), r.output);
    assert.equal(readFileSync(join(dir, "out", "o"), "utf8"), "written\n");
    assert.deepEqual(lines.slice(lines.indexOf("bound file") + 1).filter(Boolean).sort(), ["bin", "build", "dev", "etc", "lib", "lib64", "out", "proc", "sbin", "tmp", "usr"].filter((d) => !["bin", "sbin", "lib", "lib64"].includes(d) || existsSync(`/usr/${d}`)));
  });

  test("an option kiln never gives, or a source that is not there, stops the sandbox before anything runs, and says which", async () => {
    const odd = await sandboxed(["/bin/true"], ["--unshare-all", "--cap-add", "ALL"]);
    assert.equal(odd.exitCode, 125);
    assert.equal(odd.setupError, "kiln-sandbox: unsupported sandbox option --cap-add");
    const missing = await sandboxed(["/bin/true"], ["--unshare-all", "--ro-bind", join(dir, "nonexistent"), "/x"]);
    assert.equal(missing.exitCode, 125);
    assert.match(missing.setupError!, /^kiln-sandbox: bind mount .*nonexistent on \/x: No such file or directory$/);
  });

  test("a command that cannot be run is the build's own failure (exit 127, said in its output), not the sandbox's", async () => {
    const r = await sandboxed(["/kiln/no-such-builder"], ["--unshare-all", ...usr]);
    assert.equal(r.setupError, undefined);
    assert.equal(r.exitCode, 127);
    assert.match(r.output, /^kiln-sandbox: cannot run \/kiln\/no-such-builder: No such file or directory\n$/);
  });

  test("abort kills the whole sandbox, what the build left running in the background too", async () => {
    const ac = new AbortController();
    const marker = join(dir, "late");
    mkdirSync(join(dir, "late-dir"));
    const p = sandboxed(["/bin/sh", "-c", "(sleep 1; echo late > /late/x) & sleep 30"], ["--unshare-all", ...usr, "--bind", join(dir, "late-dir"), "/late"], ac.signal);
    setTimeout(() => ac.abort(), 200);
    const r = await p;
    assert.equal(r.signal, "SIGKILL");
    await new Promise((res) => setTimeout(res, 1500));
    assert.ok(!existsSync(join(dir, "late-dir", "x")), "the background process died with the sandbox");
    assert.ok(!existsSync(marker));
  });
});

describe("prepared sandboxes (made while the build before runs)", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-prepared-"));
  // a store and scratch dirs beside it, laid out as kiln's are (<root>/store, <root>/tmp/<scratch>)
  const storeDir = join(dir, "store");
  mkdirSync(storeDir);
  mkdirSync(join(dir, "tmp"));
  const bwrap = "bwrap";
  const view = storeViewOf(bwrap, storeDir, () => join(dir, "tmp", "probe"));
  const server = view.kind === "overlay" && view.start instanceof SandboxServer ? view.start : undefined;
  after(() => rmSync(dir, { recursive: true, force: true }));
  const sh = ["sh", "cat"].every((t) => findOnPath(t, ["/usr/bin", "/bin"])) ? { sh: findOnPath("sh", ["/usr/bin", "/bin"])!, cat: findOnPath("cat", ["/usr/bin", "/bin"])! } : undefined;

  const request = (label: string, o: { script: string; inputs?: string[]; network?: boolean }): BuildRequest => ({
    resolved: `${"0".repeat(31)}${label.length}` as BuildRequest["resolved"], name: label, system: "x86_64-linux",
    builder: "/kiln/host/bin/sh", args: ["-e", "-c", o.script], env: { out: `/kiln/store/${"1".repeat(32)}-${label}` },
    inputs: (o.inputs ?? []) as BuildRequest["inputs"], outputs: { out: `${"1".repeat(32)}-${label}` }, network: o.network ?? false, hostTools: sh!, cores: 1,
  });

  test("a build takes the sandbox prepared while the one before ran when it is of the same kind, sees a store path made after it was prepared, and a build of another kind starts afresh; the realize's end removes what was prepared", { skip: server && sh ? false : "no sandbox server here" }, async () => {
    const labels: string[] = [];
    const builder = new SandboxBuilder({
      bwrap, storeDir, systems: ["x86_64-linux"],
      scratchDir: (label) => { labels.push(label); const d = join(dir, "tmp", `${labels.length}-${label}`); mkdirSync(d); return d; },
      // a prepared sandbox's scratch dir is made by the server's child, not here
      scratchName: (label) => { labels.push(label); return join(dir, "tmp", `${labels.length}-${label}`); },
    });
    const io = (chunks: Buffer[]) => ({ signal: new AbortController().signal, onOutput: (c: Buffer) => chunks.push(c) });
    const build = async (r: BuildRequest) => {
      const chunks: Buffer[] = [];
      const res = await builder.build(r, io(chunks));
      const out = res.outputs.out;
      const text = out ? readFileSync(out, "utf8") : undefined;
      res.release();
      return { ...res, text, log: Buffer.concat(chunks).toString() };
    };
    const first = await build(request("a", { script: "echo first > $out" }));
    assert.equal(first.exitCode, 0, first.log);
    assert.equal(first.text, "first\n");
    // what a chain does: the next build's input is registered after the sandbox for it was prepared
    const input = `${"2".repeat(32)}-input`;
    writeFileSync(join(storeDir, input), "made after the sandbox was prepared\n");
    const second = await build(request("b", { script: `cat /kiln/store/${input} > $out; echo $$ >> $out`, inputs: [input] }));
    assert.equal(second.exitCode, 0, second.log);
    assert.match(second.text!, /^made after the sandbox was prepared\n\d+\n$/);
    assert.notEqual(second.text!.split("\n")[1], "1", "the build is not its sandbox's pid 1");
    const third = await build(request("c", { script: "echo third > $out", network: true }));
    assert.equal(third.text, "third\n");
    // a: its own scratch dir, then one prepared; b: took it (no scratch dir of its own), prepared the
    // next; c: of another kind (the network), so its own, and one more prepared
    assert.deepEqual(labels, ["a", "prepared", "prepared", "c", "prepared"]);
    await scratchRemoved();
    assert.deepEqual(readdirSync(join(dir, "tmp")).filter((e) => e !== "probe"), [], "the prepared sandbox nobody took went, with its scratch dir");
  });

  test("a prepared sandbox that was discarded cannot be started, and says so; one left alone does not keep kiln running", { skip: server ? false : "no sandbox server here" }, async () => {
    const s = new SandboxServer(helper);
    const scratch = join(dir, "tmp", "discarded");
    for (const d of ["upper/.kiln-out", "work"]) mkdirSync(join(scratch, d), { recursive: true });
    const p = s.makeAhead({ cwd: scratch, overlay: (view as { options: string }).options, options: Buffer.from(["--unshare-all", "--uid", "1000", "--gid", "1000", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"].map((o) => `${o}\0`).join("")) });
    s.discard(p);
    const r = await s.start(p, ["/bin/true"], Buffer.alloc(0), () => {}, new AbortController().signal);
    assert.ok(r.setupError !== undefined || r.signal === "SIGKILL", JSON.stringify(r));
    s.close();
  });
});

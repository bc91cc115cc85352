// Real servers for the binary cache and remote builder tests, started by the tests themselves on
// 127.0.0.1 with free ports, unprivileged where the server allows, and stopped by them: nginx
// with its WebDAV module (Debian's nginx package), an S3 server (s3rver from npm), a server that
// accepts and never answers, and OpenSSH's sshd.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";

export interface Running {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** A port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Wait until something accepts connections on the port (or the process died). */
async function listening(port: number, child: ChildProcess, what: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.on("connect", () => (c.destroy(), resolve(true)));
      c.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port}:\n${log()}`);
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/**
 * nginx serving `root` at http://127.0.0.1:PORT/, taking WebDAV PUT (nginx's dav module, with
 * the directories made as needed). One process, no master (so no privilege drop), files under `dir`.
 */
export async function startNginx(dir: string, root: string): Promise<Running> {
  mkdirSync(root, { recursive: true });
  mkdirSync(join(dir, "tmp"), { recursive: true });
  const port = await freePort();
  const conf = join(dir, "nginx.conf");
  const t = join(dir, "tmp");
  writeFileSync(conf, `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${t}/body; proxy_temp_path ${t}/proxy; fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi; scgi_temp_path ${t}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    client_max_body_size 0;
    location / {
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
  }
}
`);
  const child = spawn("nginx", ["-p", dir, "-c", conf, "-e", join(dir, "error.log")], { stdio: "ignore" });
  const log = () => { try { return readFileSync(join(dir, "error.log"), "utf8"); } catch { return "(no log)"; } };
  await listening(port, child, "nginx", log);
  return { url: `http://127.0.0.1:${port}`, port, stop: stopper(child) };
}

/** An S3-compatible server (s3rver) with `bucket`, data under `dir`; credentials S3RVER / S3RVER. */
export async function startS3(dir: string, bucket: string): Promise<Running> {
  // s3rver ships no types: the little of it used here
  const S3rver = createRequire(import.meta.url)("s3rver") as new (o: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> };
  const s3 = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
  const { port } = await s3.run();
  return { url: `http://127.0.0.1:${port}`, port, stop: () => s3.close() };
}

/** A server that accepts connections and never says a word: a cache that hangs. */
export async function startSilent(): Promise<Running & { connections: () => number }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`, port, connections: () => sockets.length,
    stop: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

export interface Sshd extends Running {
  user: string;
  /** the client's private key, to log in with */
  clientKey: string;
  /** the server's ed25519 host key, base64 (what a builder URL's host-key= takes) */
  hostKey: string;
  /** a directory the user owns, e.g. for its store */
  home: string;
}

/** A system user for the test, made if there is none (the caller must be root). */
export function ensureUser(user: string): void {
  if (spawnSync("id", ["-u", user]).status === 0) return;
  const r = spawnSync("useradd", ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", user], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`useradd ${user}: ${r.stderr}`);
}

/** Whether `user` can read (and reach) every one of `paths`. */
export function userCanRead(user: string, paths: string[]): boolean {
  return paths.every((p) => spawnSync("runuser", ["-u", user, "--", "test", "-r", p]).status === 0);
}

/**
 * OpenSSH's sshd on 127.0.0.1, run as `user` (a system user made for the test if there is none:
 * the caller must be root), so it needs no privilege and logs in only that user, with a key of
 * its own. Everything it uses is under `dir`, which the user can read.
 */
export async function startSshd(dir: string, user: string): Promise<Sshd> {
  const home = join(dir, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true });
  ensureUser(user);
  // its home is this run's (the user may have been made by an earlier run); root's stays
  if (user !== "root") spawnSync("usermod", ["--home", home, user]);
  // sshd run by root checks for its privilege separation directory
  else mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const uid = Number(spawnSync("id", ["-u", user], { encoding: "utf8" }).stdout.trim());
  const gid = Number(spawnSync("id", ["-g", user], { encoding: "utf8" }).stdout.trim());
  for (const k of ["client", "hostkey"]) spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", join(dir, k)]);
  writeFileSync(join(home, ".ssh", "authorized_keys"), readFileSync(join(dir, "client.pub")));
  const port = await freePort();
  const conf = join(dir, "sshd_config");
  writeFileSync(conf, [
    `Port ${port}`, "ListenAddress 127.0.0.1", `HostKey ${join(dir, "hostkey")}`, `AuthorizedKeysFile ${join(home, ".ssh", "authorized_keys")}`,
    `PidFile ${join(dir, "sshd.pid")}`, "UsePAM no", "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "LogLevel ERROR", "",
  ].join("\n"));
  spawnSync("chown", ["-R", `${uid}:${gid}`, dir]);
  spawnSync("chown", ["0:0", join(dir, "client")]);
  spawnSync("chmod", ["755", dir]);
  let log = "";
  const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", conf], { uid, gid, stdio: ["ignore", "ignore", "pipe"], env: { PATH: "/usr/bin:/bin" } });
  child.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  await listening(port, child, "sshd", () => log);
  const hostKey = readFileSync(join(dir, "hostkey.pub"), "utf8").split(" ")[1]!;
  return { url: `ssh://${user}@127.0.0.1:${port}`, port, user, clientKey: join(dir, "client"), hostKey, home, stop: stopper(child) };
}

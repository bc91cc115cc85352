// NODE_EXTRA_CA_CERTS, read when kiln needs it rather than at every start. Node 20 loads that
// file while it starts, before any JavaScript runs, whether or not the process ever opens a TLS
// connection: a system bundle of ~140 certificates added ~38 ms to every Node start on a host that
// sets it (56 ms instead of 18), more than a whole no-op kiln. The launcher (dist/kiln.cjs) begins as a
// shell line that starts Node without the variable and hands its value over as
// KILN_DEFERRED_CA_CERTS; adoptDeferredCa() puts NODE_EXTRA_CA_CERTS back for the processes kiln
// starts, and kiln's own HTTPS requests (fetches, binary caches) add the file's certificates to
// Node's roots themselves (tlsOptions()), as Node would have. Run any other way (node dist/kiln.cjs,
// the tests' loader), Node has loaded the file itself and nothing here applies.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { SecureContext } from "node:tls";

export const DEFERRED_CA_ENV = "KILN_DEFERRED_CA_CERTS";
const DEFERRED: unique symbol = Symbol.for("kiln.deferredExtraCaCerts") as never;

type Holder = { [DEFERRED]?: string };

/**
 * The launcher's first step: take over the file the shell line moved aside. Only when Node
 * started without NODE_EXTRA_CA_CERTS (it did not load any) is the file kiln's to add.
 */
export function adoptDeferredCa(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[DEFERRED_CA_ENV];
  if (file === undefined) return;
  delete env[DEFERRED_CA_ENV];
  if (!file || env.NODE_EXTRA_CA_CERTS) return;
  env.NODE_EXTRA_CA_CERTS = file;
  (globalThis as Holder)[DEFERRED] = file;
}

/** The file whose certificates kiln's HTTPS requests must add; undefined when Node has them. */
export function deferredCaFile(): string | undefined {
  return (globalThis as Holder)[DEFERRED];
}

let loaded: { file: string | undefined; options: TlsOptions } | undefined;

export interface TlsOptions {
  /** Node's roots and the deferred file's certificates, in one context shared by every connection */
  secureContext?: SecureContext;
}

/**
 * The TLS options of kiln's own HTTPS clients: where the file was deferred, one secure context
 * with Node's default roots (the bundled ones, or the system's under --use-openssl-ca) and the
 * file's certificates, as Node would have made it; else nothing (Node's defaults, which then hold
 * NODE_EXTRA_CA_CERTS if set). Made once: a context costs ~45 ms for a system bundle, and a `ca`
 * option would make one per connection. A file that cannot be read or holds no certificate is
 * reported once and left out, as Node does.
 */
export function tlsOptions(): TlsOptions {
  const file = deferredCaFile();
  if (loaded === undefined || loaded.file !== file) loaded = { file, options: file ? load(file) : {} };
  return loaded.options;
}

function load(file: string): TlsOptions {
  const tls = createRequire(import.meta.url)("node:tls") as typeof import("node:tls");
  try {
    const pem = readFileSync(file, "utf8");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
    const context = tls.createSecureContext();
    // the native context's own call, which Node's `ca` option makes too: added to the default roots
    const native = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
    if (typeof native?.addCACert === "function") native.addCACert(pem);
    else return { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, pem] }) };
    return { secureContext: context };
  } catch (e) {
    process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`);
    return {};
  }
}

// Ed25519 keys for binary caches (node:crypto), written as Nix writes its keys: `NAME:BASE64`,
// the public key's 32 bytes, or the secret key's 64 (seed, then the public key). The name says
// whose key it is; a signature is `NAME:BASE64` too, so a reader picks the key by name.
import { createPrivateKey, createPublicKey, randomBytes, sign as edSign, verify as edVerify, type KeyObject } from "node:crypto";
import { KilnError } from "../../store/errors.js";

export interface SecretKey {
  name: string;
  key: KeyObject;
}

export interface PublicKey {
  name: string;
  key: KeyObject;
}

const b64url = (b: Buffer) => b.toString("base64url");

function checkName(name: string, where: string): void {
  if (!/^[A-Za-z0-9._+-]+$/.test(name)) {
    throw new KilnError("USAGE", `${where}: key name ${JSON.stringify(name)} is not valid`, "a key name is letters, digits and . _ + - (for example cache.example.org-1)");
  }
}

/** An Ed25519 private key's PKCS#8 DER, before its 32-byte seed. */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

/** A new key pair, as the text of its secret and public key files. */
export function generateKeyPair(name: string): { secret: string; public: string } {
  checkName(name, "kiln cache keygen");
  // the seed drawn here and the key read from it (PKCS#8 DER), not generateKeyPairSync and a JWK
  // export: Node 20 can deadlock when a garbage collection during the export frees the key
  // generation's job (both take the key's lock)
  const seed = randomBytes(32);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
  const pub = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32);
  return { secret: `${name}:${Buffer.concat([seed, pub]).toString("base64")}`, public: `${name}:${pub.toString("base64")}` };
}

function split(text: string, what: string, where: string, bytes: number): { name: string; raw: Buffer } {
  const t = text.trim();
  const colon = t.indexOf(":");
  const raw = colon > 0 ? Buffer.from(t.slice(colon + 1), "base64") : Buffer.alloc(0);
  if (colon <= 0 || raw.length !== bytes) {
    throw new KilnError("USAGE", `${where}: not a ${what} (expected NAME:BASE64 of ${bytes} bytes)`, `make a key pair with \`kiln cache keygen NAME\`; the ${what} is in NAME.${what === "public key" ? "pub" : "sec"}`);
  }
  const name = t.slice(0, colon);
  checkName(name, where);
  return { name, raw };
}

export function parseSecretKey(text: string, where: string): SecretKey {
  const { name, raw } = split(text, "secret key", where, 64);
  const key = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d: b64url(raw.subarray(0, 32)), x: b64url(raw.subarray(32)) }, format: "jwk" });
  return { name, key };
}

export function parsePublicKey(text: string, where: string): PublicKey {
  const { name, raw } = split(text, "public key", where, 32);
  return { name, key: createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(raw) }, format: "jwk" }) };
}

/** The public half of a secret key, as text. */
export function sign(secret: SecretKey, fingerprint: string): string {
  return `${secret.name}:${edSign(null, Buffer.from(fingerprint), secret.key).toString("base64")}`;
}

/** Whether one of `signatures` is a valid signature of `fingerprint` by one of the trusted keys. */
export function verifySignatures(trusted: readonly PublicKey[], fingerprint: string, signatures: readonly string[]): boolean {
  for (const sig of signatures) {
    const colon = sig.indexOf(":");
    if (colon <= 0) continue;
    const name = sig.slice(0, colon);
    const bytes = Buffer.from(sig.slice(colon + 1), "base64");
    for (const k of trusted) if (k.name === name && bytes.length === 64 && edVerify(null, Buffer.from(fingerprint), k.key, bytes)) return true;
  }
  return false;
}

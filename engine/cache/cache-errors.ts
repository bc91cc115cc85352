// The two ways a binary cache fails a command: a URL that names none, and one that cannot be reached.
import { KilnError } from "../../store/errors.js";

export function badUrl(url: string, why: string): KilnError {
  return new KilnError("USAGE", `binary cache ${url}: ${why}`, "a cache is file:///DIR, http(s)://HOST/PATH or s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION");
}

/** A cache that could not be read or written. */
export function unreachable(url: string, what: string): KilnError {
  return new KilnError("CACHE_FAILED", `binary cache ${url}: ${what}`, "check that the server is up and the URL right; a realize goes on without a cache it cannot reach", { url });
}

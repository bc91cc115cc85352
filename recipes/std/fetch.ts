// Fixed outputs from the registries recipes pin against: Debian binary packages and npm tarballs.
import { fetch, type Drv } from "kiln";

export interface DebSpec {
  package: string;
  version: string;
  arch?: string;
  /** sha256 of the .deb file exactly as Debian's archive serves it */
  sha256: string;
  /**
   * Other places with the same bytes, tried after apt: the archive's pool URL (while the version
   * is current) and snapshot.debian.org/file/<sha1> (for good, once superseded).
   */
  urls?: string[];
}

/** Store name for a .deb: Debian's own file naming, with the epoch colon made safe. */
function debName(d: DebSpec): string {
  return `${d.package}_${d.version.replace(/^\d+:/, "")}_${d.arch ?? "all"}.deb`.replace(/[^a-zA-Z0-9+._?=-]/g, "_");
}

/** A pinned Debian binary package (.deb), fetched with apt-get download and checked by sha256. */
export function fetchDeb(d: DebSpec): Drv {
  return fetch({ name: debName(d), sha256: d.sha256, sources: [apt(d), ...(d.urls ?? []).map((url) => ({ url }))] });
}

/**
 * A pinned .deb whose place in the archive is known (the seed's lock records every package's
 * URL): the URLs first, apt-get download last. apt costs seconds per package (9 s here, against
 * 0.1 s for the URL), and finds only the versions the host's own package lists name.
 */
export function fetchDebFromPool(d: DebSpec & { urls: string[] }): Drv {
  return fetch({ name: debName(d), sha256: d.sha256, sources: [...d.urls.map((url) => ({ url })), apt(d)] });
}

function apt(d: DebSpec) {
  return { deb: { package: d.package, version: d.version, ...(d.arch ? { arch: d.arch } : {}) } };
}

export interface NpmSpec {
  name: string;
  /** an exact version */
  version: string;
  /** sha256 of the tarball exactly as the registry serves it (`npm pack NAME@VERSION; sha256sum *.tgz`) */
  sha256: string;
}

/** A pinned npm package tarball, from the npm registry (or `kiln store add-fixed`, or a mirror). */
export function fetchNpm(p: NpmSpec): Drv {
  return fetch({
    name: `${p.name.replace(/^@/, "").replace("/", "-")}-${p.version}.tgz`,
    sha256: p.sha256,
    sources: [{ npm: { name: p.name, version: p.version } }],
  });
}

export interface DebSourceSpec {
  /** the source package (e.g. "mpfr4", not the binary "libmpfr6") */
  package: string;
  /** its Debian version, as `apt-cache showsrc` gives it */
  version: string;
  /** the file of the source package, e.g. "mpfr4_4.2.0.orig.tar.xz" */
  file: string;
  /** sha256 of that file exactly as the archive serves it (the .dsc lists it too) */
  sha256: string;
}

/**
 * A file of a pinned Debian source package (an upstream .orig.tar.*, as Debian repacks it), from
 * the archive's pool or `apt-get source --download-only`, checked by sha256. Named by the file.
 */
export function fetchDebSource(d: DebSourceSpec): Drv {
  return fetch({
    name: d.file.replace(/[^a-zA-Z0-9+._?=-]/g, "_"),
    sha256: d.sha256,
    sources: [{ debSource: { package: d.package, version: d.version, file: d.file } }],
  });
}

// Numbered schema migrations. Never edit a released migration: add the next one.
export const MIGRATIONS: readonly string[] = [
  // 1: the store's core tables
  `
  CREATE TABLE valid_paths (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,      -- store path relative name: <hash>-<name>
    nar_digest    TEXT NOT NULL,             -- hex BLAKE3 tree digest, self-references normalised
    nar_size      INTEGER NOT NULL,
    deriver       TEXT,                      -- derivation hash that produced it, if any
    ca            TEXT,                      -- 'sha256:<hex>' for fixed outputs
    registered_at INTEGER NOT NULL,          -- ms since epoch
    last_used     INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE refs (
    referrer  INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
    reference INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE RESTRICT,
    PRIMARY KEY (referrer, reference)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX refs_reference ON refs(reference);

  -- canonical encodings of every derivation ever realised or evaluated, for show-derivation/log/why
  CREATE TABLE derivations (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    json TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;

  -- resolved derivation hash + output name -> store path (the cache)
  CREATE TABLE realisations (
    resolved_hash TEXT NOT NULL,
    output        TEXT NOT NULL,
    path_id       INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
    PRIMARY KEY (resolved_hash, output)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX realisations_path ON realisations(path_id);

  -- every build attempt, successful or not: the history 'why' and 'log' read
  CREATE TABLE builds (
    id            INTEGER PRIMARY KEY,
    drv_hash      TEXT NOT NULL,
    resolved_hash TEXT NOT NULL,
    name          TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('running','built','failed','cancelled')),
    exit_code     INTEGER,
    log_file      TEXT,
    inputs        TEXT NOT NULL,             -- JSON: input drv hash/output -> resolved store path
    outputs       TEXT                       -- JSON: output name -> store path
  ) STRICT;
  CREATE INDEX builds_drv ON builds(drv_hash, id);
  CREATE INDEX builds_name ON builds(name, id);

  -- which derivation was last resolved to which resolved hash (lets plan find cached outputs)
  CREATE TABLE resolutions (
    drv_hash      TEXT PRIMARY KEY,
    resolved_hash TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;

  -- fixed-output content by its sha256, whoever added it (fetch or 'kiln store add-fixed')
  CREATE TABLE fixed_content (
    sha256  TEXT NOT NULL,
    path_id INTEGER NOT NULL REFERENCES valid_paths(id) ON DELETE CASCADE,
    PRIMARY KEY (sha256, path_id)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE roots (
    name       TEXT PRIMARY KEY,             -- 'link:<abs path>' or 'pin:<name>' ...
    kind       TEXT NOT NULL CHECK (kind IN ('link','pin','generation')),
    path       TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;

  -- per-output build locks and temporary roots of running kiln processes; a row whose process
  -- is gone (pid + start time no longer match) is stale and ignored
  CREATE TABLE locks (
    key        TEXT PRIMARY KEY,
    pid        INTEGER NOT NULL,
    pid_start  TEXT NOT NULL,
    taken_at   INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE host_tool_cache (
    key  TEXT PRIMARY KEY,
    json TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
  // 2: file digests that survive the process, so a no-op evaluation re-hashes no source file
  `
  CREATE TABLE file_digests (
    key     TEXT PRIMARY KEY,                -- path, size, mtime, inode, exec bit
    digest  TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
  // 3: every realisation of a named target, with the recipe set's git revision at evaluation:
  // what 'kiln why' compares (the derivation trees themselves are in 'derivations')
  `
  CREATE TABLE target_realisations (
    id            INTEGER PRIMARY KEY,
    target        TEXT NOT NULL,             -- dotted target name as the user typed it
    output        TEXT NOT NULL,
    drv_hash      TEXT NOT NULL,
    resolved_hash TEXT,                      -- null for a fixed output (keyed by drv_hash)
    path          TEXT NOT NULL,             -- the target output's store path name
    recipes_rev   TEXT,                      -- git HEAD of the recipe set, null outside git
    recipes_dirty INTEGER,                   -- 1 if the work tree had uncommitted changes
    at            INTEGER NOT NULL           -- ms since epoch
  ) STRICT;
  CREATE INDEX target_realisations_target ON target_realisations(target, id);
  `,
  // 4: temporary roots of running kiln processes (issue 5, gc): every path a realize relies on or
  // has just produced, keyed by pid + start time so that rows of a dead process are ignored.
  // AUTOINCREMENT so ids only grow: a running gc re-reads the rows added since its mark by id.
  `
  CREATE TABLE temp_roots (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    pid       INTEGER NOT NULL,
    pid_start TEXT NOT NULL,
    path      TEXT NOT NULL,
    UNIQUE (pid, pid_start, path)
  ) STRICT;
  `,
  // 5: profiles and their numbered generations (as Nix's profiles). A generation is one store path:
  // a small environment with a link per target to its output. Its GC root is the roots row
  // 'gen:<profile>:<n>' (kind 'generation'), written in the same transaction as the generation.
  // builds_resolved: what a resolved derivation produced, once its output was collected ('why').
  `
  CREATE TABLE profiles (
    name    TEXT PRIMARY KEY,
    current INTEGER NOT NULL,                -- the generation that profiles/<name> points at
    last    INTEGER NOT NULL                 -- the highest number given: numbers are never reused
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE generations (
    profile    TEXT NOT NULL REFERENCES profiles(name),
    number     INTEGER NOT NULL,             -- 1, 2, ...; never reused
    path       TEXT NOT NULL,                -- the environment's store path name
    created_at INTEGER NOT NULL,             -- ms since epoch
    entries    TEXT NOT NULL,                -- JSON [{name, output, drv, path}], sorted by name (the target)
    PRIMARY KEY (profile, number)
  ) STRICT, WITHOUT ROWID;

  CREATE INDEX builds_resolved ON builds(resolved_hash, id);
  `,
  // 6: the builds still marked running, found without reading every build ever recorded (every
  // realize looks for those a killed process left behind)
  `
  CREATE INDEX builds_running ON builds(id) WHERE status = 'running';
  `,
  // 7: the recipe files each evaluation read, so that 'why' can diff the recipe texts of two
  // realisations and name the edited line (engine/recipe-diff.ts). A snapshot is the list of
  // files (path relative to the recipe set's folder -> digest); texts are stored once per digest.
  `
  CREATE TABLE recipe_snapshots (
    id    TEXT PRIMARY KEY,                  -- blake3 of the canonical snapshot JSON
    json  TEXT NOT NULL,                     -- {root, files: {relative path: digest}}
    at    INTEGER NOT NULL                   -- ms since epoch, when first recorded
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE recipe_texts (
    digest TEXT PRIMARY KEY,                 -- blake3 of the file's bytes
    text   TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  ALTER TABLE target_realisations ADD COLUMN recipes_snapshot TEXT;
  `,
  // 8: file digests are no longer cached for files modified less than two seconds before their
  // hash began (a same-size rewrite within the clock tick of their lstat kept the key with other
  // bytes: store/archive.ts, RACY_MS); the ones cached before are forgotten, once, and the next
  // evaluation reads its sources again
  `
  DELETE FROM file_digests;
  `,
];

// The builders that run inside kiln rather than in the sandbox, by the name a derivation gives as
// its builder. Only the names live here: evaluation checks them without loading the builders.
// (builtin:fetch is not among them: fetches are made with fetch(), not with a builder name.)
export const BUILTIN_BUILDERS = ["builtin:seed-root", "builtin:unpack-deb"] as const;

export type BuiltinBuilder = (typeof BUILTIN_BUILDERS)[number];

export function isBuiltinBuilder(builder: string): builder is BuiltinBuilder {
  return (BUILTIN_BUILDERS as readonly string[]).includes(builder);
}

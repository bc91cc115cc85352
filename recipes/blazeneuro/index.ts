// BlazeNeuro (shared/seeds 000/001): an LFS-style x86_64 glibc system, built from its toolchain up.
// Stage 2 (toolchain.ts): the cross toolchain. Stage 3 (temporary.ts): the temporary system built
// with it, which builds natively with no seed at all.
import * as sources from "./sources.js";
import * as temporary from "./temporary.js";
import * as toolchain from "./toolchain.js";

export { sources, temporary, toolchain };

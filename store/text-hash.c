/*
 * kiln's text hasher, a Node-API addon (dist/kiln-text-hash.node, built by cli/build.mjs):
 * blake3Hex(text) is BLAKE3 of a string's UTF-8 bytes, in lower-case hex, in one call.
 *
 * An evaluation hashes two short texts per derivation (its encoding, its placeholder's key). Through
 * @napi-rs/blake-hash that is three calls each (reset, update, digest), ~1 us for a few hundred
 * bytes, a tenth of evaluating a derivation; here it is one, ~0.4 us. store/digest.ts uses the
 * binding where this addon is not built. The string is written as V8 writes UTF-8 for Node (a lone
 * surrogate as U+FFFD), as Buffer.from and the binding do.
 */
#include <node_api.h>
#include <stdlib.h>

#include "blake3-c/blake3.h"

/* the text's bytes: one buffer per Node environment (a worker thread has its own), grown for the
 * longest text seen */
struct room {
  char *buf;
  size_t cap;
};

/* the buffer's first size, and the most kept between calls */
#define KEEP (64 * 1024)

static const char HEX[] = "0123456789abcdef";

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value blake3_hex(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, &data) != napi_ok || argc != 1) return fail(env, "blake3Hex takes one string");
  struct room *r = data;
  size_t len = 0;
  /* the usual text fits: one copy. A text that may not (the copy stops short of a character
   * that does not fit) is measured, and copied again into room enough. */
  if (napi_get_value_string_utf8(env, arg, r->buf, r->cap, &len) != napi_ok) return fail(env, "blake3Hex takes a string");
  if (len + 4 >= r->cap) {
    if (napi_get_value_string_utf8(env, arg, NULL, 0, &len) != napi_ok) return fail(env, "blake3Hex takes a string");
    if (len + 1 > r->cap) {
      char *grown = realloc(r->buf, len + 1);
      if (grown == NULL) {
        napi_throw_error(env, NULL, "blake3Hex: out of memory");
        return NULL;
      }
      r->buf = grown;
      r->cap = len + 1;
    }
    size_t copied = 0;
    if (napi_get_value_string_utf8(env, arg, r->buf, r->cap, &copied) != napi_ok || copied != len) return fail(env, "blake3Hex: the string changed length");
  }
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, r->buf, len);
  /* a long text (a module's record) leaves no long buffer behind */
  if (r->cap > KEEP) {
    char *smaller = realloc(r->buf, KEEP);
    if (smaller != NULL) {
      r->buf = smaller;
      r->cap = KEEP;
    }
  }
  uint8_t out[BLAKE3_OUT_LEN];
  blake3_hasher_finalize(&h, out, BLAKE3_OUT_LEN);
  char hex[2 * BLAKE3_OUT_LEN];
  for (int i = 0; i < BLAKE3_OUT_LEN; i++) {
    hex[2 * i] = HEX[out[i] >> 4];
    hex[2 * i + 1] = HEX[out[i] & 15];
  }
  napi_value result;
  if (napi_create_string_latin1(env, hex, sizeof hex, &result) != napi_ok) return NULL;
  return result;
}

static void release(void *data) {
  struct room *r = data;
  free(r->buf);
  free(r);
}

NAPI_MODULE_INIT() {
  struct room *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->buf = malloc(KEEP);
  r->cap = r->buf ? KEEP : 0;
  if (napi_add_env_cleanup_hook(env, release, r) != napi_ok) {
    release(r);
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "blake3Hex", NAPI_AUTO_LENGTH, blake3_hex, r, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "blake3Hex", fn) != napi_ok) return NULL;
  return exports;
}

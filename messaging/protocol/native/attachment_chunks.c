// Attachment chunks off the JavaScript thread (messaging/PROTOCOL.md §9): one Node-API function
// that runs one chunk's ChaCha20-Poly1305 (RFC 8439) and the SHA-256 of its sealed bytes on the
// libuv thread pool, reading the caller's input and writing the caller's output in place.
//
// Both primitives are OpenSSL's, the very library node:crypto runs: the addon is built against
// Node's own OpenSSL headers and resolves the symbols from the node binary that loads it, so it
// computes what `createCipheriv('chacha20-poly1305')` and `createHash('sha256')` compute, with
// the same code, without the copies and the thread hand-over a worker thread costs in JavaScript.
// No primitive is written here; HChaCha20 (XChaCha20's subkey) stays in JavaScript.
//
//   chunk(kind, subkey, iv, ad, input, output, hash) -> Promise<boolean>
//   chunkSync(kind, subkey, iv, ad, input, output, hash) -> boolean  (the same on the calling
//     thread, for the self-check when the addon loads)
//     kind 0, seal: output = ChaCha20-Poly1305(subkey, iv, input, ad) ‖ tag (input + 16 bytes),
//                   hash = SHA-256(output); resolves true.
//     kind 1, open: hash = SHA-256(input); output = the plaintext (input − 16 bytes); resolves
//                   true, or false (output wiped) when the tag does not verify.
//
// The caller must neither modify nor detach the buffers until the promise settles; the addon
// holds references so that they are not collected meanwhile. Argument errors throw TypeError or
// RangeError synchronously; an OpenSSL failure rejects with an Error. The subkey is copied into
// the job and wiped when the job ends.
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define MAX_CHUNK (256 * 1024 + TAG_LEN)
#define MAX_AD 1024

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[3];  // input, output, hash
  int kind;
  uint8_t key[32];
  uint8_t iv[12];
  uint8_t ad[MAX_AD];
  size_t ad_len;
  const uint8_t *in;
  size_t in_len;
  uint8_t *out;
  uint8_t *hash;
  bool ok;       // the tag verified (open) / always true for seal
  bool failed;   // OpenSSL reported an error
} job_t;

// Fetched once: implicit fetches on every call cost a lock and a lookup in OpenSSL 3.
static EVP_CIPHER *chacha = NULL;
static EVP_MD *sha256 = NULL;

static void free_job(job_t *job) {
  OPENSSL_cleanse(job, sizeof *job);
  free(job);
}

static bool digest(const uint8_t *data, size_t len, uint8_t *out) {
  unsigned int n = 0;
  return EVP_Digest(data, len, out, &n, sha256, NULL) == 1 && n == 32;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  bool seal = job->kind == 0;
  size_t n = seal ? job->in_len : job->in_len - TAG_LEN;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  bool ok = ctx != NULL &&
            EVP_CipherInit_ex2(ctx, chacha, job->key, job->iv, seal ? 1 : 0, NULL) == 1 &&
            EVP_CipherUpdate(ctx, NULL, &len, job->ad, (int)job->ad_len) == 1;
  if (ok && !seal) {
    // Hash first: the bytes hashed are the bytes authenticated, read once each from the input.
    ok = digest(job->in, job->in_len, job->hash) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(job->in + n)) == 1;
  }
  ok = ok && EVP_CipherUpdate(ctx, job->out, &len, job->in, (int)n) == 1 && (size_t)len == n;
  if (ok) {
    int tail = 0;
    bool verified = EVP_CipherFinal_ex(ctx, job->out + n, &tail) == 1 && tail == 0;
    if (seal) {
      ok = verified &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, job->out + n) == 1 &&
           digest(job->out, n + TAG_LEN, job->hash);
      job->ok = ok;
    } else {
      job->ok = verified;
      if (!verified) OPENSSL_cleanse(job->out, n);
    }
  }
  job->failed = !ok;
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(job->key, sizeof job->key);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_value result;
  if (status != napi_ok || job->failed) {
    napi_value msg;
    napi_create_string_utf8(env, "attachment chunk: OpenSSL failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, job->deferred, result);
  } else {
    napi_get_boolean(env, job->ok, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  for (int i = 0; i < 3; i++) napi_delete_reference(env, job->refs[i]);
  napi_delete_async_work(env, job->work);
  free_job(job);
}

// A Uint8Array argument's bytes; false (with a pending TypeError) for anything else.
static bool bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len, const char *what) {
  bool is = false;
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, what);
    return false;
  }
  *data = ptr;
  return true;
}

// Reads and checks the seven arguments into a new job (its buffers not yet referenced); NULL
// with a pending exception when they are wrong.
static job_t *job_from_args(napi_env env, napi_callback_info info, napi_value argv[7]) {
  size_t argc = 7;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "chunk(kind, subkey, iv, ad, input, output, hash)");
    return NULL;
  }
  int32_t kind = -1;
  if (napi_get_value_int32(env, argv[0], &kind) != napi_ok || (kind != 0 && kind != 1)) {
    napi_throw_type_error(env, NULL, "kind must be 0 (seal) or 1 (open)");
    return NULL;
  }
  uint8_t *key, *iv, *ad, *in, *out, *hash;
  size_t key_len, iv_len, ad_len, in_len, out_len, hash_len;
  if (!bytes_of(env, argv[1], &key, &key_len, "subkey must be a Uint8Array") ||
      !bytes_of(env, argv[2], &iv, &iv_len, "iv must be a Uint8Array") ||
      !bytes_of(env, argv[3], &ad, &ad_len, "ad must be a Uint8Array") ||
      !bytes_of(env, argv[4], &in, &in_len, "input must be a Uint8Array") ||
      !bytes_of(env, argv[5], &out, &out_len, "output must be a Uint8Array") ||
      !bytes_of(env, argv[6], &hash, &hash_len, "hash must be a Uint8Array")) {
    return NULL;
  }
  bool seal = kind == 0;
  if (key_len != 32 || iv_len != 12 || hash_len != 32 || ad_len > MAX_AD ||
      in_len > MAX_CHUNK || (seal ? out_len != in_len + TAG_LEN || in_len > MAX_CHUNK - TAG_LEN
                                  : in_len < TAG_LEN || out_len != in_len - TAG_LEN)) {
    napi_throw_range_error(env, NULL, "attachment chunk: bad lengths");
    return NULL;
  }
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "attachment chunk: out of memory");
    return NULL;
  }
  job->kind = kind;
  memcpy(job->key, key, 32);
  memcpy(job->iv, iv, 12);
  memcpy(job->ad, ad, ad_len);
  job->ad_len = ad_len;
  job->in = in;
  job->in_len = in_len;
  job->out = out;
  job->hash = hash;
  return job;
}

static napi_value chunk(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  job_t *job = job_from_args(env, info, argv);
  if (job == NULL) return NULL;
  napi_value promise, name;
  int refs = 0;
  bool ok = napi_create_promise(env, &job->deferred, &promise) == napi_ok;
  for (; ok && refs < 3; refs++) {
    ok = napi_create_reference(env, argv[4 + refs], 1, &job->refs[refs]) == napi_ok;
    if (!ok) break;
  }
  ok = ok &&
       napi_create_string_utf8(env, "keytrail:attachment-chunk", NAPI_AUTO_LENGTH, &name) ==
           napi_ok &&
       napi_create_async_work(env, NULL, name, execute, complete, job, &job->work) == napi_ok;
  if (ok && napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    ok = false;
  }
  if (!ok) {
    // Only when Node-API itself fails (out of memory); the promise is abandoned unsettled.
    for (int i = 0; i < refs; i++) napi_delete_reference(env, job->refs[i]);
    free_job(job);
    napi_throw_error(env, NULL, "attachment chunk: could not queue the job");
    return NULL;
  }
  return promise;
}

static napi_value chunk_sync(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  job_t *job = job_from_args(env, info, argv);
  if (job == NULL) return NULL;
  execute(env, job);
  bool failed = job->failed, ok = job->ok;
  free_job(job);
  if (failed) {
    napi_throw_error(env, NULL, "attachment chunk: OpenSSL failed");
    return NULL;
  }
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  if (chacha == NULL) chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
  if (sha256 == NULL) sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (chacha == NULL || sha256 == NULL) {
    napi_throw_error(env, NULL, "attachment chunk: OpenSSL lacks ChaCha20-Poly1305 or SHA-256");
    return NULL;
  }
  napi_value fn, fn_sync;
  if (napi_create_function(env, "chunk", NAPI_AUTO_LENGTH, chunk, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "chunk", fn) != napi_ok ||
      napi_create_function(env, "chunkSync", NAPI_AUTO_LENGTH, chunk_sync, NULL, &fn_sync) !=
          napi_ok ||
      napi_set_named_property(env, exports, "chunkSync", fn_sync) != napi_ok) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }

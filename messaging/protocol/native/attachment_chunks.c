// Attachment chunks off the JavaScript thread (messaging/PROTOCOL.md §9): one Node-API function
// that runs one chunk's ChaCha20-Poly1305 (RFC 8439) and the SHA-256 of its sealed bytes on a
// pool of threads of its own, reading the caller's input and writing the caller's output in place.
//
// The pool is not libuv's: a stream keeps more chunks queued than there are threads, so that a
// thread that finishes one starts the next at once, and libuv's four threads on a two-core machine
// then preempted each other while holding its queue lock (the JavaScript thread stalled on it for
// up to 8 ms per chunk handed over). Here exactly `threads` threads take jobs from one queue and
// hand results back through a thread-safe function; the queue is per Node environment (main
// thread or worker), its threads start with its first job and stop when the environment does.
//
// Both primitives are OpenSSL's, the very library node:crypto runs: the addon is built against
// Node's own OpenSSL headers and resolves the symbols from the node binary that loads it, so it
// computes what `createCipheriv('chacha20-poly1305')` and `createHash('sha256')` compute, with
// the same code, without the copies and the thread hand-over a worker thread costs in JavaScript.
// No primitive is written here; HChaCha20 (XChaCha20's subkey) stays in JavaScript.
//
//   threads(n) -> number  (at least n pool threads from now on, at most 16; returns the count)
//   chunk(kind, subkey, iv, ad, input, output, hash) -> Promise<boolean>
//   chunkSync(kind, subkey, iv, ad, input, output, hash) -> boolean  (the same on the calling
//     thread, for the self-check when the addon loads)
//     kind 0, seal: output = ChaCha20-Poly1305(subkey, iv, input, ad) ‖ tag (input + 16 bytes),
//                   hash = SHA-256(output); resolves true.
//     kind 1, open: hash = SHA-256(input); output = the plaintext (input − 16 bytes); resolves
//                   true, or false (output wiped) when the tag does not verify. The input is read
//                   once, in blocks that are hashed and decrypted from the same copy.
//
// The caller must neither modify nor detach the buffers until the promise settles; the addon
// holds references so that they are not collected meanwhile. Argument errors throw TypeError or
// RangeError synchronously; an OpenSSL failure rejects with an Error. The subkey is copied into
// the job and wiped when the job ends.
#include <node_api.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define MAX_CHUNK (256 * 1024 + TAG_LEN)
#define MAX_AD 1024
#define MAX_THREADS 16

typedef struct job_s {
  struct job_s *next;  // in the pool's queue
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

#define BLOCK 16384

// Opens: each block of the sealed input is copied once and both hashed and decrypted from that
// copy, so the bytes hashed are the bytes authenticated even if the caller's buffer were changed
// meanwhile (which the caller must not do, but a mistake there must not split the two).
static bool open_blocks(EVP_CIPHER_CTX *ctx, job_t *job, size_t n) {
  uint8_t buf[BLOCK];
  uint8_t tag[TAG_LEN];
  unsigned int hash_len = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md != NULL && EVP_DigestInit_ex2(md, sha256, NULL) == 1;
  for (size_t off = 0; ok && off < n; off += BLOCK) {
    size_t k = n - off < BLOCK ? n - off : BLOCK;
    int len = 0;
    memcpy(buf, job->in + off, k);
    ok = EVP_DigestUpdate(md, buf, k) == 1 &&
         EVP_CipherUpdate(ctx, job->out + off, &len, buf, (int)k) == 1 && (size_t)len == k;
  }
  memcpy(tag, job->in + n, TAG_LEN);
  ok = ok && EVP_DigestUpdate(md, tag, TAG_LEN) == 1 &&
       EVP_DigestFinal_ex(md, job->hash, &hash_len) == 1 && hash_len == 32 &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) == 1;
  EVP_MD_CTX_free(md);
  return ok;
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
  if (seal) {
    ok = ok && EVP_CipherUpdate(ctx, job->out, &len, job->in, (int)n) == 1 && (size_t)len == n;
  } else {
    ok = ok && open_blocks(ctx, job, n);
  }
  if (ok) {
    int tail = 0;
    bool verified = EVP_CipherFinal_ex(ctx, job->out + n, &tail) == 1 && tail == 0;
    if (seal) {
      // The hash is of the output, which only this job has written.
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

// One per Node environment (napi instance data).
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job_t *head, *tail;  // jobs not yet taken by a thread
  bool stop;
  int nthreads;
  pthread_t threads[MAX_THREADS];
  int wanted;  // threads to run (set by threads())
  napi_threadsafe_function tsfn;
  size_t pending;  // submitted and not yet settled (JavaScript thread only)
} pool_t;

// Settles a finished job on the JavaScript thread. `env` is NULL when the environment is going
// away: then only the memory is freed.
static void settle(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  pool_t *pool = context;
  job_t *job = data;
  if (env != NULL) {
    napi_value result;
    if (job->failed) {
      napi_value msg;
      napi_create_string_utf8(env, "attachment chunk: OpenSSL failed", NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, NULL, msg, &result);
      napi_reject_deferred(env, job->deferred, result);
    } else {
      napi_get_boolean(env, job->ok, &result);
      napi_resolve_deferred(env, job->deferred, result);
    }
    for (int i = 0; i < 3; i++) napi_delete_reference(env, job->refs[i]);
    // An idle pool does not keep the process alive.
    if (--pool->pending == 0) napi_unref_threadsafe_function(env, pool->tsfn);
  }
  free_job(job);
}

static void *worker(void *arg) {
  pool_t *pool = arg;
  for (;;) {
    pthread_mutex_lock(&pool->mu);
    while (!pool->stop && pool->head == NULL) pthread_cond_wait(&pool->cv, &pool->mu);
    if (pool->stop) {
      pthread_mutex_unlock(&pool->mu);
      return NULL;
    }
    job_t *job = pool->head;
    pool->head = job->next;
    if (pool->head == NULL) pool->tail = NULL;
    pthread_mutex_unlock(&pool->mu);
    execute(NULL, job);
    if (napi_call_threadsafe_function(pool->tsfn, job, napi_tsfn_blocking) != napi_ok) {
      free_job(job);  // the environment is closing: nobody waits for the result
    }
  }
}

// Starts threads up to `wanted` (JavaScript thread); false when none could be started.
static bool start_threads(pool_t *pool) {
  while (pool->nthreads < pool->wanted) {
    if (pthread_create(&pool->threads[pool->nthreads], NULL, worker, pool) != 0) break;
    pool->nthreads++;
  }
  return pool->nthreads > 0;
}

// At environment teardown: stop the threads (each finishes the job it runs), free the jobs left
// in the queue, and release the thread-safe function, whose finaliser then frees the pool.
static void teardown(void *arg) {
  pool_t *pool = arg;
  pthread_mutex_lock(&pool->mu);
  pool->stop = true;
  pthread_cond_broadcast(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
  for (int i = 0; i < pool->nthreads; i++) pthread_join(pool->threads[i], NULL);
  for (job_t *job = pool->head, *next; job != NULL; job = next) {
    next = job->next;
    free_job(job);
  }
  pool->head = pool->tail = NULL;
  napi_release_threadsafe_function(pool->tsfn, napi_tsfn_abort);
}

// The thread-safe function's finaliser: every call it queued has been settled or dropped.
static void finalize_pool(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pool_t *pool = data;
  pthread_mutex_destroy(&pool->mu);
  pthread_cond_destroy(&pool->cv);
  free(pool);
}

static pool_t *pool_of(napi_env env) {
  void *data = NULL;
  napi_get_instance_data(env, &data);
  return data;
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
  pool_t *pool = pool_of(env);
  job_t *job = job_from_args(env, info, argv);
  if (job == NULL) return NULL;
  napi_value promise;
  int refs = 0;
  bool ok = pool != NULL && napi_create_promise(env, &job->deferred, &promise) == napi_ok;
  for (; ok && refs < 3; refs++) {
    ok = napi_create_reference(env, argv[4 + refs], 1, &job->refs[refs]) == napi_ok;
    if (!ok) break;
  }
  ok = ok && start_threads(pool);
  if (!ok) {
    // Only when Node-API or the system fails (out of memory, no threads); the promise is
    // abandoned unsettled and the exception says why.
    for (int i = 0; i < refs; i++) napi_delete_reference(env, job->refs[i]);
    free_job(job);
    napi_throw_error(env, NULL, "attachment chunk: could not queue the job");
    return NULL;
  }
  if (pool->pending++ == 0) napi_ref_threadsafe_function(env, pool->tsfn);
  pthread_mutex_lock(&pool->mu);
  if (pool->tail == NULL) {
    pool->head = job;
  } else {
    pool->tail->next = job;
  }
  pool->tail = job;
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
  return promise;
}

static napi_value threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  int32_t n = 0;
  pool_t *pool = pool_of(env);
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok) return NULL;
  if (argc != 1 || napi_get_value_int32(env, arg, &n) != napi_ok || n < 1 || n > MAX_THREADS) {
    napi_throw_range_error(env, NULL, "threads must be a whole number from 1 to 16");
    return NULL;
  }
  if (pool == NULL) {
    napi_throw_error(env, NULL, "attachment chunk: no pool");
    return NULL;
  }
  if (n > pool->wanted) pool->wanted = n;
  napi_create_int32(env, pool->wanted, &result);
  return result;
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
  pool_t *pool = calloc(1, sizeof *pool);
  napi_value name;
  if (pool == NULL) {
    napi_throw_error(env, NULL, "attachment chunk: out of memory");
    return NULL;
  }
  pthread_mutex_init(&pool->mu, NULL);
  pthread_cond_init(&pool->cv, NULL);
  pool->wanted = 1;
  if (napi_create_string_utf8(env, "keytrail:attachment-chunk", NAPI_AUTO_LENGTH, &name) !=
          napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, pool, finalize_pool, pool,
                                      settle, &pool->tsfn) != napi_ok ||
      napi_unref_threadsafe_function(env, pool->tsfn) != napi_ok ||
      napi_set_instance_data(env, pool, NULL, NULL) != napi_ok ||
      napi_add_env_cleanup_hook(env, teardown, pool) != napi_ok) {
    return NULL;
  }
  napi_value fn, fn_sync, fn_threads;
  if (napi_create_function(env, "threads", NAPI_AUTO_LENGTH, threads, NULL, &fn_threads) !=
          napi_ok ||
      napi_set_named_property(env, exports, "threads", fn_threads) != napi_ok ||
      napi_create_function(env, "chunk", NAPI_AUTO_LENGTH, chunk, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "chunk", fn) != napi_ok ||
      napi_create_function(env, "chunkSync", NAPI_AUTO_LENGTH, chunk_sync, NULL, &fn_sync) !=
          napi_ok ||
      napi_set_named_property(env, exports, "chunkSync", fn_sync) != napi_ok) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }

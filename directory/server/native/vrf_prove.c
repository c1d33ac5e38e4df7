/*
 * keytrail_vrf: ECVRF-EDWARDS25519-SHA512-TAI proving (RFC 9381 §5.1) for the directory's
 * sequencer, as a Node-API addon over libsodium.
 *
 * No curve arithmetic is written here: the point operations are libsodium's own ref10
 * implementation (the ge25519_* functions behind crypto_scalarmult_ed25519 and crypto_sign),
 * linked from Debian's static libsodium.a, and hashing and scalar arithmetic use libsodium's
 * public API. What this file adds is the ECVRF composition, in one native call per batch:
 * libsodium's public crypto_scalarmult_ed25519_noclamp checks subgroup membership of its input
 * on every call (a second scalar multiplication), which the prover does not need: the
 * hash-to-curve point H is multiplied by the cofactor, so it is in the prime-order subgroup by
 * construction, and the prover's scalars are reduced modulo L.
 *
 * The output is byte-identical to @keytrail/core's vrf.prove (tests compare whole proofs on
 * the RFC 9381 vectors and on random inputs). The one input that is not proven here is an
 * alpha whose hash-to-curve point has small order (H = identity after the cofactor
 * multiplication, probability about 2^-250): its status byte is 1 and the caller uses the
 * reference prover.
 */
#include <node_api.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

/* libsodium 1.0.18 private types (src/libsodium/include/sodium/private/ed25519_ref10.h). Both
 * field representations libsodium builds (uint64_t[5] with 128-bit multiplication, int32_t[10]
 * without) are 40 bytes, so the structures have the same size and layout either way; the
 * JavaScript side checks the addon against the reference prover when it loads. */
typedef unsigned char fe25519_opaque[40];
typedef struct { fe25519_opaque X, Y, Z, T; } ge25519_p3;
typedef struct { fe25519_opaque X, Y, Z, T; } ge25519_p1p1;
typedef struct { fe25519_opaque YplusX, YminusX, Z, T2d; } ge25519_cached;

extern int ge25519_frombytes(ge25519_p3 *h, const unsigned char *s);
extern void ge25519_p3_tobytes(unsigned char *s, const ge25519_p3 *h);
extern void ge25519_scalarmult(ge25519_p3 *h, const unsigned char *a, const ge25519_p3 *p);
extern void ge25519_scalarmult_base(ge25519_p3 *h, const unsigned char *a);
extern void ge25519_p3_to_cached(ge25519_cached *r, const ge25519_p3 *p);
extern void ge25519_add(ge25519_p1p1 *r, const ge25519_p3 *p, const ge25519_cached *q);
extern void ge25519_p1p1_to_p3(ge25519_p3 *r, const ge25519_p1p1 *p);

#define SUITE 0x03
#define MAX_ALPHA 65536

/* RFC 8032 §5.1.3 decoding rules libsodium's ge25519_frombytes does not apply: y < p, and
 * x = 0 (y = ±1) with the sign bit set is invalid. */
static int strict_encoding(const unsigned char *e) {
  int i;
  int top = e[31] & 0x7f;
  int at_least_p = top == 0x7f && e[0] >= 0xed;
  for (i = 1; i < 31 && at_least_p; i++) at_least_p = e[i] == 0xff;
  if (at_least_p) return 0;
  if (e[31] & 0x80) {
    int one = e[0] == 1 && top == 0, minus_one = e[0] == 0xec && top == 0x7f;
    for (i = 1; i < 31; i++) {
      one = one && e[i] == 0;
      minus_one = minus_one && e[i] == 0xff;
    }
    if (one || minus_one) return 0;
  }
  return 1;
}

static void dbl(ge25519_p3 *p) {
  ge25519_cached c;
  ge25519_p1p1 r;
  ge25519_p3_to_cached(&c, p);
  ge25519_add(&r, p, &c);
  ge25519_p1p1_to_p3(p, &r);
}

static int is_identity(const unsigned char *enc) {
  static const unsigned char id[32] = {1};
  return sodium_memcmp(enc, id, 32) == 0;
}

/* ECVRF_encode_to_curve_try_and_increment (RFC 9381 §5.4.1.1) → H and its encoding.
 * Returns 0, or 1 when H is the identity (the reference prover handles that input). */
static int encode_to_curve(ge25519_p3 *h, unsigned char h_string[32], const unsigned char pk[32],
                           const unsigned char *alpha, size_t alpha_len) {
  unsigned char head[2 + 32] = {SUITE, 0x01};
  unsigned char tail[2] = {0, 0x00};
  unsigned char digest[64];
  int ctr;
  memcpy(head + 2, pk, 32);
  for (ctr = 0; ctr < 256; ctr++) {
    crypto_hash_sha512_state st;
    tail[0] = (unsigned char)ctr;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, head, sizeof head);
    crypto_hash_sha512_update(&st, alpha, alpha_len);
    crypto_hash_sha512_update(&st, tail, sizeof tail);
    crypto_hash_sha512_final(&st, digest);
    if (!strict_encoding(digest) || ge25519_frombytes(h, digest) != 0) continue;
    dbl(h);
    dbl(h);
    dbl(h);
    ge25519_p3_tobytes(h_string, h);
    return is_identity(h_string) ? 1 : 0;
  }
  return 1; /* unreachable in practice (2^-256); the reference prover reports it */
}

/* One proof: pi = Gamma ‖ c ‖ s, and beta = ECVRF_proof_to_hash(pi) (§5.2): SHA-512(0x03 ‖
 * 0x03 ‖ encode(8·Gamma) ‖ 0x00). x is the secret scalar (reduced), prefix the nonce key (the
 * second half of SHA-512(sk)). Returns 0, or 1 to ask for the reference prover. */
static int prove_one(unsigned char pi[80], unsigned char beta[64], const unsigned char x[32],
                     const unsigned char prefix[32], const unsigned char pk[32],
                     const unsigned char *alpha, size_t alpha_len) {
  ge25519_p3 h, gamma, gamma8, u, v;
  unsigned char h_string[32], gamma_s[32], gamma8_s[32], u_s[32], v_s[32], k[32], c[32], cx[32],
      s[32];
  static const unsigned char beta_head[2] = {SUITE, 0x03};
  unsigned char digest[64];
  static const unsigned char challenge_head[2] = {SUITE, 0x02};
  static const unsigned char zero = 0x00;
  crypto_hash_sha512_state st;

  if (encode_to_curve(&h, h_string, pk, alpha, alpha_len) != 0) return 1;
  ge25519_scalarmult(&gamma, x, &h);
  ge25519_p3_tobytes(gamma_s, &gamma);

  /* ECVRF_nonce_generation_RFC8032 (§5.4.2.2): k = SHA-512(prefix ‖ h_string) mod L. */
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, prefix, 32);
  crypto_hash_sha512_update(&st, h_string, 32);
  crypto_hash_sha512_final(&st, digest);
  crypto_core_ed25519_scalar_reduce(k, digest);

  ge25519_scalarmult_base(&u, k);
  ge25519_p3_tobytes(u_s, &u);
  ge25519_scalarmult(&v, k, &h);
  ge25519_p3_tobytes(v_s, &v);

  /* ECVRF_challenge_generation (§5.4.3): c = SHA-512(0x03 ‖ 0x02 ‖ Y ‖ H ‖ Γ ‖ U ‖ V ‖ 0x00)[0..16]. */
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, challenge_head, 2);
  crypto_hash_sha512_update(&st, pk, 32);
  crypto_hash_sha512_update(&st, h_string, 32);
  crypto_hash_sha512_update(&st, gamma_s, 32);
  crypto_hash_sha512_update(&st, u_s, 32);
  crypto_hash_sha512_update(&st, v_s, 32);
  crypto_hash_sha512_update(&st, &zero, 1);
  crypto_hash_sha512_final(&st, digest);
  memset(c, 0, sizeof c);
  memcpy(c, digest, 16);

  /* s = (k + c·x) mod L */
  crypto_core_ed25519_scalar_mul(cx, c, x);
  crypto_core_ed25519_scalar_add(s, k, cx);

  gamma8 = gamma;
  dbl(&gamma8);
  dbl(&gamma8);
  dbl(&gamma8);
  ge25519_p3_tobytes(gamma8_s, &gamma8);
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, beta_head, 2);
  crypto_hash_sha512_update(&st, gamma8_s, 32);
  crypto_hash_sha512_update(&st, &zero, 1);
  crypto_hash_sha512_final(&st, beta);

  memcpy(pi, gamma_s, 32);
  memcpy(pi + 32, c, 16);
  memcpy(pi + 48, s, 32);
  sodium_memzero(k, sizeof k);
  sodium_memzero(cx, sizeof cx);
  sodium_memzero(digest, sizeof digest);
  return 0;
}

#define CHECK(call)                                                                     \
  do {                                                                                  \
    if ((call) != napi_ok) {                                                            \
      napi_throw_error(env, "ERR_VRF_NATIVE", "keytrail_vrf: Node-API call failed");    \
      return NULL;                                                                      \
    }                                                                                   \
  } while (0)

static int get_bytes(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  bool is_typed;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  if (napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &offset) != napi_ok) return 0;
  return type == napi_uint8_array;
}

/* proveBatch(x: Uint8Array(32), prefix: Uint8Array(32), pk: Uint8Array(32),
 *            alphas: Uint8Array, ends: Uint32Array, out: Uint8Array(80 n),
 *            betas: Uint8Array(64 n), status: Uint8Array(n))
 * alphas is every input concatenated; ends[i] is where input i ends. */
static napi_value prove_batch(napi_env env, napi_callback_info info) {
  size_t argc = 8, i, n, x_len, prefix_len, pk_len, alphas_len, out_len, betas_len, status_len,
         ends_len;
  napi_value argv[8], ends_ab;
  unsigned char *x, *prefix, *pk, *alphas, *out, *betas, *status;
  uint32_t *ends;
  napi_typedarray_type ends_type;
  size_t ends_offset, start = 0;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 8 || !get_bytes(env, argv[0], &x, &x_len) ||
      !get_bytes(env, argv[1], &prefix, &prefix_len) || !get_bytes(env, argv[2], &pk, &pk_len) ||
      !get_bytes(env, argv[3], &alphas, &alphas_len) ||
      !get_bytes(env, argv[5], &out, &out_len) || !get_bytes(env, argv[6], &betas, &betas_len) ||
      !get_bytes(env, argv[7], &status, &status_len) ||
      napi_get_typedarray_info(env, argv[4], &ends_type, &ends_len, (void **)&ends, &ends_ab,
                               &ends_offset) != napi_ok ||
      ends_type != napi_uint32_array || x_len != 32 || prefix_len != 32 || pk_len != 32) {
    napi_throw_type_error(env, "ERR_VRF_NATIVE", "keytrail_vrf.proveBatch: bad arguments");
    return NULL;
  }
  n = ends_len;
  if (out_len != 80 * n || betas_len != 64 * n || status_len != n) {
    napi_throw_range_error(env, "ERR_VRF_NATIVE", "keytrail_vrf.proveBatch: bad output sizes");
    return NULL;
  }
  for (i = 0; i < n; i++) {
    size_t end = ends[i];
    if (end < start || end > alphas_len || end - start > MAX_ALPHA) {
      napi_throw_range_error(env, "ERR_VRF_NATIVE", "keytrail_vrf.proveBatch: bad input bounds");
      return NULL;
    }
    status[i] = (unsigned char)prove_one(out + 80 * i, betas + 64 * i, x, prefix, pk,
                                         alphas + start, end - start);
    start = end;
  }
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (sodium_init() < 0) {
    napi_throw_error(env, "ERR_VRF_NATIVE", "keytrail_vrf: sodium_init failed");
    return NULL;
  }
  CHECK(napi_create_function(env, "proveBatch", NAPI_AUTO_LENGTH, prove_batch, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "proveBatch", fn));
  return exports;
}

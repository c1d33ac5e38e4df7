/**
 * TypeBox schemas of the identity HTTP API (request bodies and every response). Byte strings
 * travel as unpadded base64url; exact lengths are checked when decoded.
 * @module
 */
import { Type } from 'typebox';

/** `{ code, message }`, every error body. */
export const ErrorBody = Type.Object({ code: Type.String(), message: Type.String() });

/** A tenant id as in `tenants.id`. */
export const TenantId = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' });
/** A random row id (identity ids are 22-character base64url). */
export const RowId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
/** A 256-bit opaque secret (flow secrets, refresh tokens). */
export const Secret = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' });
/** Base64url bytes (length checked on decoding). */
export const B64url = (maxLength: number) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength });

/** Path parameters `/t/:tenant`. */
export const TenantParams = Type.Object({ tenant: TenantId });
/** Path parameters `/t/:tenant/idps/:idp`. */
export const IdpParams = Type.Object({ tenant: TenantId, idp: RowId });

/** Roles. */
export const RoleSchema = Type.Union([Type.Literal('admin'), Type.Literal('member')]);

/** An account summary. */
export const AccountSummary = Type.Object({
  id: Type.String(),
  username: Type.String(),
  roles: Type.Array(RoleSchema),
});

/** What the client does after the IdP step. */
export const SigninStep = Type.Object({
  flowId: Type.String(),
  next: Type.Union([Type.Literal('totp_enroll'), Type.Literal('totp')]),
  recoveryAvailable: Type.Boolean(),
  account: AccountSummary,
});

/** Tokens after sign-in or refresh. */
export const Tokens = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer(),
  refreshToken: Type.String(),
  sessionId: Type.String(),
});

/** Tokens plus who signed in. */
export const SigninTokens = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer(),
  refreshToken: Type.String(),
  sessionId: Type.String(),
  account: AccountSummary,
});

/** Argon2id parameters. */
export const KdfParamsSchema = Type.Object(
  {
    memoryKiB: Type.Integer({ minimum: 8, maximum: 1 << 22 }),
    passes: Type.Integer({ minimum: 1, maximum: 100 }),
    parallelism: Type.Integer({ minimum: 1, maximum: 255 }),
  },
  { additionalProperties: false },
);

/** A device for the directory. */
export const DeviceSchema = Type.Object(
  {
    deviceId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
    identityKey: B64url(43),
    x25519Key: Type.Optional(B64url(43)),
  },
  { additionalProperties: false },
);

/** A directory receipt. */
export const ReceiptSchema = Type.Object({ version: Type.Integer(), reference: Type.String() });

/** A flow secret with a device label. */
export const DeviceLabel = Type.String({ minLength: 1, maxLength: 100 });

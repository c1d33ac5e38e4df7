/**
 * Identity error codes (a closed union) and the one constructor routes use. Errors reach the
 * client through server-kit's `installErrorHandler` as `{ code, message }`. Messages are fixed
 * strings: no token, code, assertion or e-mail address is ever echoed.
 * @module
 */
import { HttpError } from '@keytrail/server-kit';

/** Every error code the identity routes send. */
export type IdentityErrorCode =
  | 'ERR_IDENTITY_MALFORMED'
  | 'ERR_IDENTITY_UNAUTHENTICATED'
  | 'ERR_IDENTITY_FORBIDDEN'
  | 'ERR_IDENTITY_NOT_FOUND'
  | 'ERR_IDENTITY_CONFLICT'
  | 'ERR_IDENTITY_IDP_INVALID'
  | 'ERR_IDENTITY_IDP_UNREACHABLE'
  | 'ERR_IDENTITY_FLOW_INVALID'
  | 'ERR_IDENTITY_OIDC_REJECTED'
  | 'ERR_IDENTITY_SAML_REJECTED'
  | 'ERR_IDENTITY_NO_ROLE'
  | 'ERR_IDENTITY_ACCOUNT_DISABLED'
  | 'ERR_IDENTITY_NOT_PROVISIONED'
  | 'ERR_IDENTITY_TOTP_INVALID'
  | 'ERR_IDENTITY_TOTP_LOCKED'
  | 'ERR_IDENTITY_TOTP_STATE'
  | 'ERR_IDENTITY_BACKUP_CODE_INVALID'
  | 'ERR_IDENTITY_BACKUP_SLOTS_INVALID'
  | 'ERR_IDENTITY_REFRESH_INVALID'
  | 'ERR_IDENTITY_DEVICE_NOT_ALLOWED'
  | 'ERR_IDENTITY_DIRECTORY_UNAVAILABLE';

const STATUS: Record<IdentityErrorCode, number> = {
  ERR_IDENTITY_MALFORMED: 400,
  ERR_IDENTITY_UNAUTHENTICATED: 401,
  ERR_IDENTITY_FORBIDDEN: 403,
  ERR_IDENTITY_NOT_FOUND: 404,
  ERR_IDENTITY_CONFLICT: 409,
  ERR_IDENTITY_IDP_INVALID: 422,
  ERR_IDENTITY_IDP_UNREACHABLE: 502,
  ERR_IDENTITY_FLOW_INVALID: 400,
  ERR_IDENTITY_OIDC_REJECTED: 401,
  ERR_IDENTITY_SAML_REJECTED: 401,
  ERR_IDENTITY_NO_ROLE: 403,
  ERR_IDENTITY_ACCOUNT_DISABLED: 403,
  ERR_IDENTITY_NOT_PROVISIONED: 403,
  ERR_IDENTITY_TOTP_INVALID: 401,
  ERR_IDENTITY_TOTP_LOCKED: 429,
  ERR_IDENTITY_TOTP_STATE: 409,
  ERR_IDENTITY_BACKUP_CODE_INVALID: 401,
  ERR_IDENTITY_BACKUP_SLOTS_INVALID: 400,
  // RFC 6749 §5.2 invalid_grant is a 400; every refresh failure looks the same to the caller.
  ERR_IDENTITY_REFRESH_INVALID: 400,
  ERR_IDENTITY_DEVICE_NOT_ALLOWED: 403,
  ERR_IDENTITY_DIRECTORY_UNAVAILABLE: 503,
};

/**
 * An {@link HttpError} with an identity code and its fixed status.
 * @example throw identityError('ERR_IDENTITY_TOTP_INVALID', 'code not accepted');
 */
export function identityError(
  code: IdentityErrorCode,
  message: string,
  headers: Record<string, string> = {},
): HttpError {
  return new HttpError(STATUS[code], code, message, { headers });
}

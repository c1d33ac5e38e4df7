-- Identity: IdP links, accounts, MFA, backup codes, sessions and refresh-token families,
-- SCIM tokens, short-lived sign-in flows and the security audit log. Every row is keyed by
-- tenant and no query crosses tenants. Secrets are stored only as SHA-256 hashes, or
-- encrypted under the server's data key (OIDC client secrets, TOTP seeds).

CREATE TABLE identity_tenant_settings (
  tenant_id text PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  -- IdP group name -> role ('admin' | 'member'); groups not listed give no role.
  role_mapping jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Role for a person none of whose groups is mapped; NULL refuses the sign-in.
  default_role text CHECK (default_role IN ('admin', 'member')),
  jit_enabled boolean NOT NULL DEFAULT true,
  -- SHA-256 of the tenant's SCIM bearer token; the token itself is shown once.
  scim_token_hash bytea CHECK (scim_token_hash IS NULL OR length(scim_token_hash) = 32),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identity_idps (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('oidc', 'saml')),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- Non-secret settings (issuer, client id, entry point, certificates, SP entity id…).
  settings jsonb NOT NULL,
  -- OIDC client secret, AES-256-GCM under the data key (nonce || ciphertext || tag).
  secret_enc bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  unlinked_at timestamptz
);
CREATE INDEX identity_idps_tenant ON identity_idps (tenant_id);

CREATE TABLE identity_accounts (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  -- Lower-cased e-mail or SCIM userName; unique per tenant.
  username text NOT NULL CHECK (length(username) BETWEEN 1 AND 320),
  display_name text,
  idp_id text REFERENCES identity_idps(id),
  idp_subject text,
  scim_external_id text,
  roles text[] NOT NULL DEFAULT '{}',
  active boolean NOT NULL DEFAULT true,
  totp_secret_enc bytea,
  totp_pending_enc bytea,
  totp_enabled_at timestamptz,
  -- Last TOTP time step accepted: a code is accepted once (UPDATE … WHERE totp_last_step < $step).
  totp_last_step bigint NOT NULL DEFAULT -1,
  totp_failures integer NOT NULL DEFAULT 0,
  totp_locked_until timestamptz,
  first_device_published_at timestamptz,
  -- Set once the directory confirmed removal of every device (deprovisioning is retried until then).
  devices_removed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  deactivated_at timestamptz,
  UNIQUE (tenant_id, username),
  UNIQUE (tenant_id, idp_id, idp_subject)
);

CREATE TABLE identity_backup_codes (
  account_id text NOT NULL REFERENCES identity_accounts(id) ON DELETE CASCADE,
  slot smallint NOT NULL CHECK (slot BETWEEN 1 AND 8),
  generation integer NOT NULL,
  salt bytea NOT NULL CHECK (length(salt) = 16),
  kdf_params jsonb NOT NULL,
  -- AEAD(KEK, archive key); the server cannot unwrap it.
  wrapped_key bytea NOT NULL,
  -- SHA-256(AUTH), AUTH = HKDF(Argon2id(code, salt), "kt/backup/auth/v1").
  auth_verifier bytea NOT NULL CHECK (length(auth_verifier) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  consumed_at timestamptz,
  PRIMARY KEY (account_id, slot)
);

-- One session per signed-in device; its refresh tokens form one family (RFC 9700 §4.14.2).
CREATE TABLE identity_sessions (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  account_id text NOT NULL REFERENCES identity_accounts(id) ON DELETE CASCADE,
  device_label text,
  amr text[] NOT NULL,
  created_at timestamptz NOT NULL,
  last_used_at timestamptz NOT NULL,
  -- Absolute cap on the family, whatever the rotations.
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text
);
CREATE INDEX identity_sessions_account ON identity_sessions (account_id);

CREATE TABLE identity_refresh_tokens (
  hash bytea PRIMARY KEY CHECK (length(hash) = 32),
  session_id text NOT NULL REFERENCES identity_sessions(id) ON DELETE CASCADE,
  parent_hash bytea,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  consumed_at timestamptz
);
CREATE INDEX identity_refresh_tokens_session ON identity_refresh_tokens (session_id);

-- A sign-in in progress: IdP flow state, then the second-factor step. The client holds the
-- flow secret; only its hash is stored.
CREATE TABLE identity_flows (
  id text PRIMARY KEY,
  secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
  tenant_id text NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  idp_id text NOT NULL REFERENCES identity_idps(id) ON DELETE CASCADE,
  -- 'idp' (waiting for the IdP) -> 'mfa' (IdP done, waiting for TOTP or recovery) -> 'done'.
  stage text NOT NULL CHECK (stage IN ('idp', 'mfa', 'done', 'failed')),
  -- OIDC: state, nonce, PKCE verifier. SAML: the AuthnRequest ID.
  state jsonb NOT NULL,
  account_id text REFERENCES identity_accounts(id) ON DELETE CASCADE,
  attempts integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);

-- node-saml's InResponseTo cache, per IdP; consumed exactly once by compare-and-swap.
CREATE TABLE identity_saml_requests (
  idp_id text NOT NULL REFERENCES identity_idps(id) ON DELETE CASCADE,
  request_id text NOT NULL,
  created_at timestamptz NOT NULL,
  consumed_at timestamptz,
  PRIMARY KEY (idp_id, request_id)
);

CREATE TABLE identity_audit (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  at timestamptz NOT NULL,
  event text NOT NULL,
  actor text NOT NULL,
  account_id text,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX identity_audit_tenant_at ON identity_audit (tenant_id, at);
CREATE INDEX identity_audit_at ON identity_audit (at);

-- Ed25519 keys signing access tokens; several are published in the JWKS during rotation.
CREATE TABLE identity_signing_keys (
  kid text PRIMARY KEY,
  private_jwk_enc bytea NOT NULL,
  public_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  retired_at timestamptz
);

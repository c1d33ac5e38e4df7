-- C2SP tlog-witness v1.0.0 witness state: the logs it follows, their keys, the latest
-- checkpoint it cosigned per log (with the log's signatures, so misbehaviour stays provable),
-- and equivocation evidence. Logs and keys are never removed: re-adding a log could let the
-- witness sign a split view.

CREATE TABLE witness_logs (
  origin text PRIMARY KEY CHECK (octet_length(origin) BETWEEN 1 AND 1024),
  -- SHA-256(origin), the key of the monitoring read endpoint GET /<hex>/checkpoint.
  origin_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(origin_sha256) = 32),
  -- Latest cosigned tree size and root; size 0 with the empty-tree root until the first cosign.
  tree_size bigint NOT NULL DEFAULT 0 CHECK (tree_size >= 0),
  root_hash bytea NOT NULL CHECK (octet_length(root_hash) = 32),
  -- The latest cosigned checkpoint note: its text and the log signatures that verified.
  checkpoint text,
  -- This witness's cosignature line(s) on it and their timestamp (POSIX seconds).
  cosignature text,
  cosigned_at bigint,
  -- Informational, from the witness-network log list.
  qpd bigint,
  contact text,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Defence in depth behind the compare-and-swap in the code: the stored state never moves
-- backwards, and one tree size never gets a second root.
CREATE FUNCTION witness_logs_forward_only() RETURNS trigger AS $$
BEGIN
  IF NEW.tree_size < OLD.tree_size THEN
    RAISE EXCEPTION 'witness state for % would roll back from % to %', OLD.origin, OLD.tree_size, NEW.tree_size;
  END IF;
  IF NEW.tree_size = OLD.tree_size AND NEW.root_hash <> OLD.root_hash THEN
    RAISE EXCEPTION 'witness state for % would change the root at size %', OLD.origin, OLD.tree_size;
  END IF;
  IF NEW.origin <> OLD.origin OR NEW.origin_sha256 <> OLD.origin_sha256 THEN
    RAISE EXCEPTION 'witness log origins are immutable';
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER witness_logs_forward_only BEFORE UPDATE ON witness_logs
  FOR EACH ROW EXECUTE FUNCTION witness_logs_forward_only();

CREATE TABLE witness_log_keys (
  origin text NOT NULL REFERENCES witness_logs (origin),
  -- A C2SP signed-note verifier key (Ed25519, type 0x01).
  vkey text NOT NULL,
  added_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (origin, vkey)
);

CREATE TABLE witness_evidence (
  id bigserial PRIMARY KEY,
  origin text NOT NULL REFERENCES witness_logs (origin),
  -- same_size_fork: a validly signed checkpoint with the stored size and another root (proof
  --   of equivocation on its own).
  -- consistency_proof_failed: a validly signed larger checkpoint whose proof from the stored
  --   checkpoint did not verify (a fork, or a broken client; ask the log for a proof).
  kind text NOT NULL CHECK (kind IN ('same_size_fork', 'consistency_proof_failed')),
  stored_size bigint NOT NULL,
  stored_root bytea NOT NULL,
  stored_checkpoint text,
  old_size bigint NOT NULL,
  -- The consistency proof as sent: base64 hashes, one per line.
  proof text NOT NULL,
  received_checkpoint text NOT NULL,
  received_size bigint NOT NULL,
  received_root bytea NOT NULL,
  -- SHA-256 of the received checkpoint text: one row per (origin, kind, checkpoint).
  received_sha256 bytea NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (origin, kind, received_sha256)
);

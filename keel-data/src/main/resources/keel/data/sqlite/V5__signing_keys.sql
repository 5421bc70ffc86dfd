-- The control plane's token signing keys (agent identity). Times are epoch milliseconds.
-- A key signs new tokens until retire_at; its public half verifies tokens until expire_at, which is
-- after the last token it signed has expired. Rows past expire_at are deleted.
CREATE TABLE signing_keys (
  kid         TEXT PRIMARY KEY,
  algorithm   TEXT NOT NULL,
  public_jwk  TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  retire_at   INTEGER NOT NULL,
  expire_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX signing_keys_retire ON signing_keys (retire_at DESC);

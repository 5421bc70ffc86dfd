-- The control plane's token signing keys (PostgreSQL): the same table as the SQLite store's V5.
-- A key signs new tokens until retire_at; its public half verifies tokens until expire_at, which is
-- after the last token it signed has expired. Rows past expire_at are deleted.
CREATE TABLE signing_keys (
  kid         text COLLATE "C" PRIMARY KEY,
  algorithm   text NOT NULL,
  public_jwk  text NOT NULL,
  private_jwk text NOT NULL,
  created_at  timestamptz NOT NULL,
  retire_at   timestamptz NOT NULL,
  expire_at   timestamptz NOT NULL
);
CREATE INDEX signing_keys_retire ON signing_keys (retire_at DESC);

-- Token signing keys. The private key is PKCS#8 sealed by the secret box
-- (`lk1.<kid>.…`, context "signing-key:<kid>"); the public half is kept as
-- its JWK. A key is published from created_at, signs from active_from, and
-- is published until published_until (NULL: for as long as it is current).
CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_key     TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    active_from     TIMESTAMP NOT NULL,
    published_until TIMESTAMP
);
CREATE INDEX signing_keys_active ON signing_keys (active_from);

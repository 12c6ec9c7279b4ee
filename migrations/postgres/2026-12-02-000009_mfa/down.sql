DROP TABLE policies;
DROP TABLE recovery_codes;
DROP TABLE webauthn_credentials;
DROP TABLE totp_factors;

//! The diesel schema, shared by PostgreSQL and SQLite. Columns use only types
//! both backends have: text ids, UTC timestamps, booleans, JSON kept as text.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_normalized -> Text,
        email_verified -> Bool,
        name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        admin -> Bool,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        public -> Bool,
        first_party -> Bool,
        grant_types -> Text,
        signing_alg -> Text,
        require_mfa -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        admin -> Bool,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> Timestamp,
        kind -> Text,
        outcome -> Text,
        actor -> Text,
        user_id -> Nullable<Text>,
        user_email -> Nullable<Text>,
        client_addr -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    store_entries (key) {
        key -> Text,
        value -> Binary,
        expires_at -> BigInt,
    }
}

diesel::table! {
    store_counters (key) {
        key -> Text,
        count -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    store_index (index_key, member) {
        index_key -> Text,
        member -> Text,
        expires_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    clients,
    audit_events,
    store_entries,
    store_counters,
    store_index,
    signing_keys,
    mail_outbox,
    consents,
    token_families,
    refresh_tokens,
    deliveries,
    identities,
    user_groups,
    group_members,
    api_keys,
    webhooks,
    webhook_attempts
);

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        active_from -> Timestamp,
        published_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        attempts -> BigInt,
        recipient -> Text,
        message -> Text,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        granted_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(consents -> clients (client_id));

diesel::table! {
    token_families (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        scopes -> Text,
        sid -> Text,
        auth_time -> Timestamp,
        amr -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        family_id -> Text,
        created_at -> Timestamp,
        idle_expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(refresh_tokens -> token_families (family_id));

diesel::table! {
    deliveries (id) {
        id -> Text,
        kind -> Text,
        client_id -> Text,
        target_url -> Text,
        payload -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        attempts -> BigInt,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    identities (id) {
        id -> Text,
        user_id -> Text,
        provider -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> Text,
        secret -> Text,
        last_step -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webauthn_credentials (id) {
        id -> Text,
        user_id -> Text,
        kind -> Text,
        credential_id -> Text,
        name -> Text,
        credential -> Text,
        sign_count -> BigInt,
        backup_eligible -> Bool,
        backup_state -> Bool,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    policies (name) {
        name -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    user_groups (id) {
        id -> Text,
        name -> Text,
        name_normalized -> Text,
        require_mfa -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        added_at -> Timestamp,
    }
}

diesel::joinable!(group_members -> user_groups (group_id));
diesel::joinable!(group_members -> users (user_id));

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        scopes -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        url -> Text,
        description -> Text,
        events -> Text,
        secret -> Text,
        enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        webhook_id -> Text,
        event_id -> Text,
        event_type -> Text,
        at -> Timestamp,
        attempt -> BigInt,
        status -> Nullable<BigInt>,
        outcome -> Text,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(webhook_attempts -> webhooks (webhook_id));

//! The discovery document (OpenID Connect Discovery 1.0 §3, RFC 8414),
//! built with openidconnect's provider-metadata type. Every list says only
//! what this build does.

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, IssuerUrl, JsonWebKeySetUrl, LanguageTag,
    ProviderMetadata, ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    ACR_VALUES, AUTHORIZE_PATH, END_SESSION_PATH, INTROSPECTION_PATH, JWKS_PATH, REVOCATION_PATH, SUPPORTED_CLAIMS,
    SUPPORTED_SCOPES, TOKEN_PATH, USERINFO_PATH,
};
use crate::Core;
use crate::error::CoreError;

/// Members from RFC 8414, RFC 7636, RFC 9207 and OIDC Prompt Create that
/// openidconnect's type does not carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraMetadata {
    pub end_session_endpoint: String,
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub authorization_response_iss_parameter_supported: bool,
    pub prompt_values_supported: Vec<String>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type LatchkeyProviderMetadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

impl Core {
    /// The discovery document as served: it follows the settings alone, so
    /// it is serialized once.
    pub fn discovery_json(&self) -> Result<Arc<str>, CoreError> {
        if let Some(body) = self.discovery_json.get() {
            return Ok(Arc::clone(body));
        }
        let body: Arc<str> = Arc::from(
            serde_json::to_string(&self.discovery()?).map_err(|e| CoreError::Internal(format!("discovery: {e}")))?,
        );
        Ok(Arc::clone(self.discovery_json.get_or_init(|| body)))
    }

    pub fn discovery(&self) -> Result<LatchkeyProviderMetadata, CoreError> {
        let bad = |e: url::ParseError| CoreError::Internal(format!("discovery: {e}"));
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let metadata = LatchkeyProviderMetadata::new(
            IssuerUrl::new(self.issuer().to_owned()).map_err(bad)?,
            AuthUrl::new(self.endpoint(AUTHORIZE_PATH)).map_err(bad)?,
            JsonWebKeySetUrl::new(self.endpoint(JWKS_PATH)).map_err(bad)?,
            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
            vec![CoreSubjectIdentifierType::Public],
            crate::signing::Alg::ALL.iter().map(|a| a.jws()).collect(),
            ExtraMetadata {
                end_session_endpoint: self.endpoint(END_SESSION_PATH),
                backchannel_logout_supported: true,
                backchannel_logout_session_supported: true,
                introspection_endpoint: self.endpoint(INTROSPECTION_PATH),
                introspection_endpoint_auth_methods_supported: strings(&["client_secret_basic", "client_secret_post"]),
                revocation_endpoint: self.endpoint(REVOCATION_PATH),
                revocation_endpoint_auth_methods_supported: strings(&[
                    "client_secret_basic",
                    "client_secret_post",
                    "none",
                ]),
                code_challenge_methods_supported: strings(&["S256"]),
                authorization_response_iss_parameter_supported: true,
                prompt_values_supported: strings(&["none", "login", "consent", "select_account"]),
            },
        )
        .set_token_endpoint(Some(TokenUrl::new(self.endpoint(TOKEN_PATH)).map_err(bad)?))
        .set_userinfo_endpoint(Some(UserInfoUrl::new(self.endpoint(USERINFO_PATH)).map_err(bad)?))
        .set_scopes_supported(Some(SUPPORTED_SCOPES.iter().map(|s| Scope::new((*s).to_owned())).collect()))
        .set_response_modes_supported(Some(vec![CoreResponseMode::Query]))
        .set_grant_types_supported(Some(vec![
            CoreGrantType::AuthorizationCode,
            CoreGrantType::RefreshToken,
            CoreGrantType::ClientCredentials,
        ]))
        .set_acr_values_supported(Some(
            ACR_VALUES.iter().map(|a| AuthenticationContextClass::new((*a).to_owned())).collect(),
        ))
        .set_token_endpoint_auth_methods_supported(Some(vec![
            CoreClientAuthMethod::ClientSecretBasic,
            CoreClientAuthMethod::ClientSecretPost,
            CoreClientAuthMethod::None,
        ]))
        .set_claim_types_supported(Some(vec![CoreClaimType::Normal]))
        .set_claims_supported(Some(SUPPORTED_CLAIMS.iter().map(|c| CoreClaimName::new((*c).to_owned())).collect()))
        .set_ui_locales_supported(Some(vec![LanguageTag::new("en".to_owned())]))
        .set_claims_parameter_supported(Some(false))
        .set_request_parameter_supported(Some(false))
        .set_request_uri_parameter_supported(Some(false))
        .set_require_request_uri_registration(Some(false));
        Ok(metadata)
    }
}

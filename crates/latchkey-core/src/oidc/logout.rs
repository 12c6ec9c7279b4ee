//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the
//! end-session request is checked here; the web layer ends the session
//! (at once with a valid `id_token_hint` of the signed-in user, after the
//! user confirms otherwise) and follows `post_logout_redirect_uri` only when
//! it is registered for the client exactly.

use serde_json::Value;

use super::{param, single_params};
use crate::Core;
use crate::clients::find_client;
use crate::error::CoreError;

const MAX_STATE: usize = 2048;

/// A checked end-session request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndSession {
    /// The subject of a valid `id_token_hint` (ours, expired or not).
    pub hint_subject: Option<String>,
    /// The client the request is from, when it can be told.
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    /// A registered post-logout redirect URI and the state to return.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl EndSession {
    /// Where to send the browser after signing out, if anywhere.
    pub fn redirect(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_deref()?;
        let mut url = url::Url::parse(uri).ok()?;
        if let Some(s) = &self.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Some(url.to_string())
    }
}

impl Core {
    /// The subject and audiences of an ID token we issued (expiry ignored,
    /// as a logout or login hint may be old).
    pub(crate) async fn id_token_hint(&self, token: &str) -> Result<Option<(String, Vec<String>)>, CoreError> {
        let Some(v) = self.verify_jws(token).await? else { return Ok(None) };
        let is_id_token = v.typ().is_none_or(|t| t.eq_ignore_ascii_case("JWT"));
        if !is_id_token || v.claim_str("iss") != Some(self.issuer()) {
            return Ok(None);
        }
        let aud: Vec<String> = match v.claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        Ok(v.claim_str("sub").map(|s| (s.to_owned(), aud)))
    }

    /// Checks an end-session request. Nothing in it can make us redirect
    /// anywhere not registered; a hint that does not verify is no hint.
    pub async fn end_session_request(&self, pairs: Vec<(String, String)>) -> Result<EndSession, CoreError> {
        let Ok(params) = single_params(pairs) else { return Ok(EndSession::default()) };
        let mut out = EndSession::default();
        let asked_client = param(&params, "client_id").filter(|c| c.len() <= 64);
        let mut client_id = asked_client.map(str::to_owned);
        if let Some(hint) = param(&params, "id_token_hint")
            && let Some((sub, aud)) = self.id_token_hint(hint).await?
        {
            match &client_id {
                Some(c) if !aud.contains(c) => {} // a hint for another client: not a hint here
                Some(_) => out.hint_subject = Some(sub),
                None => {
                    out.hint_subject = Some(sub);
                    if aud.len() == 1 {
                        client_id = aud.into_iter().next();
                    }
                }
            }
        }
        let Some(client) = (match client_id {
            Some(id) => find_client(self, &id).await?,
            None => None,
        }) else {
            return Ok(out);
        };
        out.client_id = Some(client.client_id.clone());
        out.client_name = Some(client.name.clone());
        if let Some(uri) = param(&params, "post_logout_redirect_uri")
            && client.post_logout_redirect_uris.iter().any(|r| r == uri)
        {
            out.post_logout_redirect_uri = Some(uri.to_owned());
            out.state = param(&params, "state").filter(|s| s.len() <= MAX_STATE).map(str::to_owned);
        }
        Ok(out)
    }
}

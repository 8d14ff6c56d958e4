//! Callers in AWS mode: API Gateway's JWT authorizer has already validated the Cognito
//! token (signature, issuer, audience, expiry) before the function runs, and passes its
//! claims in the request context. This layer turns them into the service's [`Caller`]
//! (Cognito groups → role), which the Router's extractor picks up instead of a bearer
//! token.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_http::request::RequestContext;
use opti_api::Caller;
use opti_core::Role;

/// The caller described by validated JWT claims: the name from `cognito:username`
/// (else `username`, else `sub`), the strongest role among the `cognito:groups` that
/// name a role. `None` when no group grants a role.
pub fn caller_from_claims(claims: &std::collections::HashMap<String, String>) -> Option<Caller> {
    let name = ["cognito:username", "username", "sub"]
        .iter()
        .find_map(|k| claims.get(*k).filter(|v| !v.is_empty()))?
        .clone();
    let groups = claims.get("cognito:groups")?;
    let role = parse_groups(groups).filter_map(Role::parse).max()?;
    Some(Caller { name, role })
}

/// The group names of a `cognito:groups` claim as API Gateway flattens it: `[a b]`,
/// `["a","b"]` or `a,b`.
fn parse_groups(raw: &str) -> impl Iterator<Item = &str> {
    raw.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(|g| g.trim().trim_matches('"'))
        .filter(|g| !g.is_empty())
}

/// The JWT claims of an API Gateway HTTP API request, if its authorizer ran.
fn jwt_claims(req: &Request) -> Option<&std::collections::HashMap<String, String>> {
    match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => Some(&ctx.authorizer.as_ref()?.jwt.as_ref()?.claims),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Axum middleware: puts the Cognito caller into the request extensions. A request
/// whose validated claims grant no role gets no caller (the Router then answers 401
/// unless it carries a local bearer token, which AWS mode's API Gateway never lets
/// through without a JWT).
pub async fn cognito_caller(mut req: Request, next: Next) -> Response {
    // Never trust a caller that arrived with the request itself.
    req.extensions_mut().remove::<Caller>();
    if let Some(caller) = jwt_claims(&req).and_then(caller_from_claims) {
        req.extensions_mut().insert(caller);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn groups_map_to_the_strongest_role_in_every_flattened_form() {
        for raw in [
            "[reviewer admin]",
            "[\"reviewer\",\"admin\"]",
            "reviewer,admin",
        ] {
            let c = caller_from_claims(&claims(&[
                ("cognito:username", "rita"),
                ("cognito:groups", raw),
            ]))
            .expect("a caller");
            assert_eq!(c.role, Role::Admin, "{raw}");
            assert_eq!(c.name, "rita");
        }
        let cam = caller_from_claims(&claims(&[("sub", "abc"), ("cognito:groups", "[camera]")]))
            .expect("a camera");
        assert_eq!((cam.name.as_str(), cam.role), ("abc", Role::Camera));
    }

    #[test]
    fn no_role_group_or_no_name_means_no_caller() {
        assert!(caller_from_claims(&claims(&[
            ("cognito:username", "eve"),
            ("cognito:groups", "[visitors]")
        ]))
        .is_none());
        assert!(caller_from_claims(&claims(&[("cognito:username", "eve")])).is_none());
        assert!(caller_from_claims(&claims(&[("cognito:groups", "[admin]")])).is_none());
    }
}

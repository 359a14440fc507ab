//! The local JWT issuer: when the stack's API has a JWT authorizer, the runner plays its issuer.
//!
//! It makes an RSA key at start-up (RS256, the kind API Gateway's JWT authorizers take), mints
//! tokens for the template's issuer and audience, serves its JWKS, and checks every request to a
//! JWT route as the authorizer does: a bearer token signed with its key, from the issuer, for one
//! of the audiences, not expired, carrying one of the route's scopes; else `401` (`403` for a
//! missing scope), as API Gateway answers, and the function is not invoked. What passes reaches
//! the function as API Gateway passes it: the claims and scopes in
//! `requestContext.authorizer.jwt`. So the same order-api runs locally as deployed.
//!
//! Tokens are asked for over the API's own loopback port (`POST /local/tokens`, [`TOKENS_PATH`])
//! by `order-producer --as CUSTOMER` and the tests; the key never leaves the runner.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

use crate::LocalError;

/// Where the runner serves the issuer's keys, on the API's port.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Where the runner mints tokens, on the API's port: `{"customer": "U1", "admin": false}`.
pub const TOKENS_PATH: &str = "/local/tokens";
/// The issuer and audience `--jwt` synthesizes the stack with, when cdk.json names none.
pub const LOCAL_ISSUER: &str = "https://issuer.orders.localhost/";
pub const LOCAL_AUDIENCE: &str = "orders";
/// How long a minted token is good for.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Who the issuer mints tokens for: the claim that names the customer, the scopes a customer's
/// token carries and the admin scope (order-api's settings and the routes' scopes).
#[derive(Debug, Clone)]
pub struct Audience {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub customer_claim: String,
    pub customer_scopes: Vec<String>,
    pub admin_scope: String,
}

pub struct Issuer {
    pub audience: Audience,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwks: Value,
}

/// Why a request is refused before the function: API Gateway's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one that is not valid here: `401`.
    Unauthorized(String),
    /// A valid token without any of the route's scopes: `403`.
    Forbidden(String),
}

/// A verified token as the authorizer passes it on: every claim as a string, and the scopes.
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: HashMap<String, String>,
    pub scopes: Vec<String>,
}

/// The issuer of `api`'s JWT routes, when it has any: the routes' issuer and audiences, the
/// customer claim and admin scope of the function they integrate (read from its environment as
/// order-api reads them), the routes' other scopes as a customer's.
pub fn for_api(
    api: &crate::resources::ApiSpec,
    created: &crate::resources::Created,
) -> Result<Option<Issuer>, LocalError> {
    let jwt: Vec<_> = api
        .routes
        .iter()
        .filter_map(|r| r.jwt.as_ref().map(|j| (r, j)))
        .collect();
    let Some((route, first)) = jwt.first() else {
        return Ok(None);
    };
    if jwt
        .iter()
        .any(|(_, j)| j.issuer != first.issuer || j.audiences != first.audiences)
    {
        return Err(LocalError::Input(format!(
            "API {} has routes of more than one JWT issuer; the local runner plays one",
            api.id
        )));
    }
    let environment = created
        .function(&route.function_id)
        .map(|f| f.environment.clone())
        .unwrap_or_default();
    let auth = order_pipeline::runtime::config::ApiAuth::from_env(
        &order_pipeline::runtime::config::Env(|name: &str| environment.get(name).cloned()),
    )
    .map_err(|e| LocalError::Input(format!("API {}'s function: {e}", api.id)))?;
    let order_pipeline::runtime::config::ApiAuth::Jwt {
        customer_claim,
        admin_scope,
    } = auth
    else {
        return Err(LocalError::Input(format!(
            "API {} has JWT routes but its function is told its callers are IAM (API_AUTH)",
            api.id
        )));
    };
    let mut customer_scopes: Vec<String> = Vec::new();
    for (_, j) in &jwt {
        for s in &j.scopes {
            if *s != admin_scope && !customer_scopes.contains(s) {
                customer_scopes.push(s.clone());
            }
        }
    }
    Issuer::new(Audience {
        issuer: first.issuer.clone(),
        audiences: first.audiences.clone(),
        customer_claim,
        customer_scopes,
        admin_scope,
    })
    .map(Some)
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Issuer {
    /// An issuer with a new RSA 2048 key.
    pub fn new(audience: Audience) -> Result<Self, LocalError> {
        let fail = |what: &str| LocalError::Input(format!("the local JWT issuer: {what}"));
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| fail("could not make an RSA key"))?;
        let pkcs8 = pair
            .as_der()
            .map_err(|_| fail("could not encode its key"))?;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|e| fail(&format!("its key is refused: {e}")))?;
        let public = pair.public_key();
        let n = b64url(public.modulus().big_endian_without_leading_zero());
        let e = b64url(public.exponent().big_endian_without_leading_zero());
        let decoding = DecodingKey::from_rsa_components(&n, &e)
            .map_err(|e| fail(&format!("its public key is refused: {e}")))?;
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]});
        Ok(Issuer {
            audience,
            encoding,
            decoding,
            kid,
            jwks,
        })
    }

    /// The issuer's public keys (JWKS), as an issuer serves them.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// A token for `customer`: the customer claim and `sub` name it; it carries the customer's
    /// scopes, or the admin scope when `admin`.
    pub fn token_for(&self, customer: &str, admin: bool) -> Result<String, LocalError> {
        let a = &self.audience;
        let scopes = if admin {
            vec![a.admin_scope.clone()]
        } else {
            a.customer_scopes.clone()
        };
        let mut claims = Map::new();
        claims.insert("sub".into(), customer.into());
        claims.insert(a.customer_claim.clone(), customer.into());
        if !scopes.is_empty() {
            claims.insert("scope".into(), scopes.join(" ").into());
        }
        self.mint(claims, TOKEN_LIFETIME)
    }

    /// A token with `claims` besides the issuer's, the first audience and the times.
    pub fn mint(
        &self,
        mut claims: Map<String, Value>,
        lifetime: Duration,
    ) -> Result<String, LocalError> {
        let now = now_seconds();
        claims.insert("iss".into(), self.audience.issuer.clone().into());
        if let Some(aud) = self.audience.audiences.first() {
            claims.insert("aud".into(), aud.clone().into());
        }
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + lifetime.as_secs()).into());
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &Value::Object(claims), &self.encoding)
            .map_err(|e| LocalError::Input(format!("the local JWT issuer could not sign: {e}")))
    }

    /// The `Authorization` header's token checked for a route needing one of `scopes` (none: any
    /// valid token), as API Gateway's JWT authorizer checks it.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        scopes: &[String],
    ) -> Result<Verified, Denied> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Denied::Unauthorized("no bearer token in the Authorization header".into())
            })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.audience.issuer]);
        validation.set_audience(&self.audience.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &validation)
                .map_err(|e| Denied::Unauthorized(format!("the token is not valid here: {e}")))?;
        let claims: HashMap<String, String> = data
            .claims
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect();
        let granted: Vec<String> = ["scope", "scp"]
            .iter()
            .filter_map(|c| claims.get(*c))
            .flat_map(|s| s.split_whitespace().map(str::to_string))
            .collect();
        if !scopes.is_empty() && !scopes.iter().any(|s| granted.contains(s)) {
            return Err(Denied::Forbidden(format!(
                "the token has none of the route's scopes ({})",
                scopes.join(", ")
            )));
        }
        Ok(Verified {
            claims,
            scopes: granted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer::new(Audience {
            issuer: LOCAL_ISSUER.into(),
            audiences: vec![LOCAL_AUDIENCE.into()],
            customer_claim: "sub".into(),
            customer_scopes: vec!["orders/customer".into()],
            admin_scope: "orders/admin".into(),
        })
        .expect("an issuer")
    }

    fn route_scopes() -> Vec<String> {
        vec!["orders/customer".into(), "orders/admin".into()]
    }

    /// Protects: a minted customer's token passes with its claims and scopes; an admin's carries
    /// the admin scope.
    #[test]
    fn a_minted_token_verifies_with_its_customer_and_scopes() {
        let issuer = issuer();
        let token = issuer.token_for("U1", false).unwrap();
        let v = issuer
            .verify(Some(&format!("Bearer {token}")), &route_scopes())
            .unwrap();
        assert_eq!(v.claims["sub"], "U1");
        assert_eq!(v.scopes, ["orders/customer"]);
        let admin = issuer.token_for("ops", true).unwrap();
        let v = issuer
            .verify(Some(&format!("Bearer {admin}")), &route_scopes())
            .unwrap();
        assert_eq!(v.scopes, ["orders/admin"]);
    }

    /// Protects: what the authorizer refuses is refused: no token, another key's token, an
    /// expired one, another audience (401), and a token without the route's scopes (403).
    #[test]
    fn tokens_the_authorizer_would_refuse_are_refused() {
        let issuer = issuer();
        let other = super::Issuer::new(issuer.audience.clone()).unwrap();
        let scopes = route_scopes();
        let bearer = |t: String| format!("Bearer {t}");
        assert!(matches!(
            issuer.verify(None, &scopes),
            Err(Denied::Unauthorized(_))
        ));
        let foreign = other.token_for("U1", false).unwrap();
        assert!(matches!(
            issuer.verify(Some(&bearer(foreign)), &scopes),
            Err(Denied::Unauthorized(_))
        ));
        let mut claims = Map::new();
        claims.insert("sub".into(), "U1".into());
        claims.insert("scope".into(), "orders/customer".into());
        claims.insert("exp".into(), 1.into());
        let expired = {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(issuer.kid.clone());
            let mut all = claims.clone();
            all.insert("iss".into(), LOCAL_ISSUER.into());
            all.insert("aud".into(), LOCAL_AUDIENCE.into());
            jsonwebtoken::encode(&header, &Value::Object(all), &issuer.encoding).unwrap()
        };
        assert!(matches!(
            issuer.verify(Some(&bearer(expired)), &scopes),
            Err(Denied::Unauthorized(_))
        ));
        let mut elsewhere = issuer.audience.clone();
        elsewhere.audiences = vec!["payments".into()];
        let elsewhere = Issuer {
            audience: elsewhere,
            encoding: issuer.encoding.clone(),
            decoding: issuer.decoding.clone(),
            kid: issuer.kid.clone(),
            jwks: Value::Null,
        };
        let wrong_audience = elsewhere.token_for("U1", false).unwrap();
        assert!(matches!(
            issuer.verify(Some(&bearer(wrong_audience)), &scopes),
            Err(Denied::Unauthorized(_))
        ));
        let mut unscoped = Map::new();
        unscoped.insert("sub".into(), "U1".into());
        let unscoped = issuer.mint(unscoped, TOKEN_LIFETIME).unwrap();
        assert!(matches!(
            issuer.verify(Some(&bearer(unscoped.clone())), &scopes),
            Err(Denied::Forbidden(_))
        ));
        assert!(
            issuer.verify(Some(&bearer(unscoped)), &[]).is_ok(),
            "a route without scopes takes any valid token"
        );
    }
}

//! Who calls order-api, as API Gateway's authorizer tells it, and whose orders they may act on.
//!
//! - IAM (SigV4): the caller is a service (a shop's back end, a partner's system) acting for any
//!   customer; the order's `customerId` is the service's to give.
//! - JWT: the caller is the customer the token's customer claim names. It places and reads its
//!   own orders only; a token with the admin scope acts for any customer. API Gateway has checked
//!   the token (signature, issuer, audience, expiry, the route's scopes) before the function runs;
//!   the function reads the claims it passes on in `requestContext.authorizer.jwt`.

use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::http::{error, ApiError};
use crate::runtime::config::ApiAuth;

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// IAM-authorized: a service acting for any customer.
    Service,
    /// A customer's token: that customer's orders only.
    Customer(String),
    /// A token with the admin scope (the customer claim is the admin's own id): any customer's
    /// orders.
    Admin(String),
}

/// Why a request has no usable caller: `401` (no verified token reached the function) or `403`
/// (a token without the customer claim).
pub struct Refused {
    pub status: StatusCode,
    pub error: ApiError,
}

impl Caller {
    /// The caller of `request` under the stack's `auth`.
    pub fn of(request: &Request, auth: &ApiAuth) -> Result<Caller, Refused> {
        let ApiAuth::Jwt {
            customer_claim,
            admin_scope,
        } = auth
        else {
            return Ok(Caller::Service);
        };
        let jwt = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => {
                context.authorizer.as_ref().and_then(|a| a.jwt.as_ref())
            }
            _ => None,
        };
        // Behind the stack's JWT authorizer every request has one; a request without one did not
        // come through it, and nothing is done on its behalf.
        let Some(jwt) = jwt else {
            return Err(Refused {
                status: StatusCode::UNAUTHORIZED,
                error: error(
                    "Authorization",
                    "no verified token: send `Authorization: Bearer <token>` from the stack's issuer",
                ),
            });
        };
        // Kept as the parser keeps the order's customer (trimmed, NFC), so the two compare.
        let Some(id) = jwt
            .claims
            .get(customer_claim)
            .map(|c| order_domain::normalized_text(c))
            .filter(|c| !c.is_empty())
        else {
            return Err(Refused {
                status: StatusCode::FORBIDDEN,
                error: error(
                    "Authorization",
                    format!(
                        "the token has no {customer_claim:?} claim, which names the customer \
                         (the stack's apiJwtCustomerClaim): ask the issuer for a customer's token"
                    ),
                ),
            });
        };
        // API Gateway passes the token's scopes (from `scope` or `scp`); read the claims too, as
        // a request built without them would carry them there.
        let from_claims = ["scope", "scp"]
            .iter()
            .filter_map(|name| jwt.claims.get(*name))
            .flat_map(|s| s.split_whitespace());
        let is_admin = jwt
            .scopes
            .iter()
            .flatten()
            .map(String::as_str)
            .chain(from_claims)
            .any(|s| s == admin_scope);
        Ok(if is_admin {
            Caller::Admin(id)
        } else {
            Caller::Customer(id)
        })
    }

    /// The customer an order that names none is placed for: the token's; a service must name one.
    pub fn own_id(&self) -> Option<&str> {
        match self {
            Caller::Service => None,
            Caller::Customer(id) | Caller::Admin(id) => Some(id),
        }
    }

    /// Whether the caller may place, read and cancel `customer_id`'s orders.
    pub fn acts_for(&self, customer_id: &str) -> bool {
        match self {
            Caller::Service | Caller::Admin(_) => true,
            Caller::Customer(id) => id == customer_id,
        }
    }

    /// How the caller shows in logs: its kind, never the customer id of a token (the order's own
    /// log fields name its customer).
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::Service => "service",
            Caller::Customer(_) => "customer",
            Caller::Admin(_) => "admin",
        }
    }
}

//! Routing rules: `GET|PUT /api/v1/routing-rules` (scope `admin`). `PUT` validates the whole set,
//! stores it as a new version (the previous ones are kept) and answers its number.

use actix_web::{web, HttpResponse};
use clairon_application::commands::PutRoutingRules;

use crate::http::extract::JsonBody;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::requests::RoutingRulesBody;
use crate::http::schema::responses::{RoutingRulesResponse, RulesVersionStored};
use crate::http::state::Handlers;

type Data = web::Data<Handlers>;

/// `GET /api/v1/routing-rules` → the rules in force and their version.
#[utoipa::path(
    get, path = "/api/v1/routing-rules", tag = "routing",
    responses(
        (status = 200, description = "The newest stored version, or version 0: the built-in default set.", body = RoutingRulesResponse),
    ),
    security(("api_key" = [])),
)]
pub async fn get_rules(handlers: Data) -> Result<HttpResponse, ApiError> {
    let current = handlers.routing_rules.current().await.map_err(repository)?;
    Ok(HttpResponse::Ok().json(RoutingRulesResponse::from(&current)))
}

/// `PUT /api/v1/routing-rules` → 200 `{version}`.
#[utoipa::path(
    put, path = "/api/v1/routing-rules", tag = "routing",
    request_body = RoutingRulesBody,
    responses(
        (status = 200, description = "Stored as a new version, in force from now on.", body = RulesVersionStored),
        (status = 422, description = "A bad rule, named by its place (`rules[2].channels[0]`, `rules[1].event` for a repeated pattern); nothing is stored.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn put_rules(
    handlers: Data,
    JsonBody(body): JsonBody<RoutingRulesBody>,
) -> Result<HttpResponse, ApiError> {
    let rules = body.into_rules()?;
    let stored = handlers
        .routing_rules
        .execute(PutRoutingRules { rules })
        .await
        .map_err(repository)?;
    Ok(HttpResponse::Ok().json(RulesVersionStored {
        version: stored.version,
    }))
}

/// Registers the routing-rule routes in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/routing-rules")
            .route(scoped!(get, require_admin, get_rules))
            .route(scoped!(put, require_admin, put_rules)),
    );
}

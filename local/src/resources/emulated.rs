//! The resources read from the template alone, with nothing to create in the emulator: the
//! schedules (EventBridge rules) and the HTTP APIs.

use serde_json::Value;

use super::specs::{ApiSpec, JwtSpec, RouteSpec, ScheduleSpec};
use crate::template::Template;
use crate::LocalError;

/// The enabled `rate(...)` rules of the template, one spec per function target.
pub(super) fn schedules(template: &Template) -> Result<Vec<ScheduleSpec>, LocalError> {
    let mut specs = Vec::new();
    for (id, r) in template.of_type("AWS::Events::Rule") {
        if r.properties["State"]
            .as_str()
            .is_some_and(|s| s != "ENABLED")
        {
            continue;
        }
        let Some(expression) = r.properties["ScheduleExpression"].as_str() else {
            return Err(LocalError::Input(format!(
                "rule {id} has no ScheduleExpression: the local runner emulates schedules only"
            )));
        };
        let rate_seconds = rate_seconds(expression).ok_or_else(|| {
            LocalError::Input(format!(
                "rule {id}: {expression:?} is not a rate(N minutes|hours|days) the local runner knows"
            ))
        })?;
        for target in r.properties["Targets"].as_array().into_iter().flatten() {
            let function_id = named_id(&target["Arn"]).ok_or_else(|| {
                LocalError::Input(format!(
                    "rule {id}: a target names no resource of the stack"
                ))
            })?;
            let input = match target["Input"].as_str() {
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    LocalError::Input(format!("rule {id}: its target's Input is not JSON: {e}"))
                })?,
                None => {
                    return Err(LocalError::Input(format!(
                        "rule {id}: the local runner sends a target's constant Input only, and this target has none"
                    )))
                }
            };
            specs.push(ScheduleSpec {
                id: id.to_string(),
                rate_seconds,
                function_id,
                input,
            });
        }
    }
    Ok(specs)
}

/// `rate(5 minutes)` in seconds.
fn rate_seconds(expression: &str) -> Option<u64> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let unit_seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(n * unit_seconds)
}

/// The logical id a value names through `Ref` or `Fn::GetAtt`, anywhere inside it.
fn named_id(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("Ref") {
                return Some(id.clone());
            }
            if let Some(id) = map.get("Fn::GetAtt").and_then(|a| a[0].as_str()) {
                return Some(id.to_string());
            }
            map.values().find_map(named_id)
        }
        Value::Array(items) => items.iter().find_map(named_id),
        _ => None,
    }
}

/// A route's JWT authorizer (`AuthorizationType: JWT`): its issuer and audiences, and the
/// route's scopes; `None` for any other authorization.
fn jwt_of(template: &Template, id: &str, route: &Value) -> Result<Option<JwtSpec>, LocalError> {
    if route["AuthorizationType"].as_str() != Some("JWT") {
        return Ok(None);
    }
    let config = named_id(&route["AuthorizerId"])
        .and_then(|a| template.resources.get(&a))
        .map(|a| &a.properties["JwtConfiguration"])
        .filter(|c| c["Issuer"].is_string())
        .ok_or_else(|| {
            LocalError::Input(format!(
                "route {id} takes JWTs but names no authorizer with an issuer the runner can read"
            ))
        })?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    Ok(Some(JwtSpec {
        issuer: config["Issuer"].as_str().unwrap_or_default().to_string(),
        audiences: strings(&config["Audience"]),
        scopes: strings(&route["AuthorizationScopes"]),
    }))
}

/// The template's HTTP APIs: each route's method, path and the function its integration invokes.
pub(super) fn apis(template: &Template) -> Result<Vec<ApiSpec>, LocalError> {
    template
        .of_type("AWS::ApiGatewayV2::Api")
        .map(|(api_id, _)| {
            let routes = template
                .of_type("AWS::ApiGatewayV2::Route")
                .filter(|(_, r)| named_id(&r.properties["ApiId"]).as_deref() == Some(api_id))
                .map(|(id, r)| {
                    let key = r.properties["RouteKey"].as_str().unwrap_or_default();
                    let (method, path) = key.split_once(' ').ok_or_else(|| {
                        LocalError::Input(format!("route {id} has route key {key:?}, not \"METHOD /path\""))
                    })?;
                    let integration = named_id(&r.properties["Target"]).unwrap_or_default();
                    let function_id = template
                        .resources
                        .get(&integration)
                        .and_then(|i| named_id(&i.properties["IntegrationUri"]))
                        .ok_or_else(|| {
                            LocalError::Input(format!(
                                "route {id} ({key}) integrates no Lambda function the runner can find"
                            ))
                        })?;
                    Ok(RouteSpec {
                        method: method.to_string(),
                        path: path.to_string(),
                        function_id,
                        jwt: jwt_of(template, id, &r.properties)?,
                    })
                })
                .collect::<Result<Vec<_>, LocalError>>()?;
            Ok(ApiSpec {
                id: api_id.to_string(),
                routes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: the stack's DLQ sweep is found with its rate, its function and its input, so the
    /// local runner runs it as EventBridge would; a schedule it cannot run is an error.
    #[test]
    fn the_dlq_sweep_schedule_is_read_from_the_template() {
        let template = Template::current().expect("the stack synthesizes");
        let specs = schedules(&template).expect("the stack's schedules are rates");
        assert_eq!(specs.len(), 1, "{specs:?}");
        assert!(specs[0].rate_seconds >= 60, "{specs:?}");
        assert!(
            specs[0].function_id.starts_with("DlqAlarmFunction"),
            "{specs:?}"
        );
        assert_eq!(specs[0].input, serde_json::json!({"sweep": "scheduled"}));
        assert_eq!(rate_seconds("rate(1 hour)"), Some(3600));
        assert_eq!(rate_seconds("cron(0 12 * * ? *)"), None);
        assert_eq!(rate_seconds("rate(five minutes)"), None);
    }
}

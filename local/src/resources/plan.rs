//! What the runner does with each resource type of the template: create, emulate or skip.

use serde::Serialize;

use crate::template::Template;
use crate::LocalError;

/// What the runner does with one resource of the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action", content = "detail")]
pub enum Action {
    /// Created in the emulator with the template's properties.
    Create,
    /// Run by the local runner itself.
    Emulate(String),
    /// Left out, and why.
    Skip(String),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedResource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub action: Action,
}

/// What the runner does with each resource type; `None` for a type it does not know.
fn action_for(kind: &str) -> Option<Action> {
    let skip = |why: &str| Some(Action::Skip(why.to_string()));
    match kind {
        "AWS::SNS::Topic" | "AWS::SQS::Queue" | "AWS::SNS::Subscription"
        | "AWS::DynamoDB::Table" => Some(Action::Create),
        "AWS::CloudWatch::Alarm" => Some(Action::Emulate(
            "stored in the emulator; evaluated by the runner where the metric is observable locally (queue depth, function errors), and its function actions invoked".into(),
        )),
        "AWS::Lambda::Function" => Some(Action::Emulate(
            "the real handler of its binary, in process, configured from the template's environment".into(),
        )),
        "AWS::Lambda::EventSourceMapping" => Some(Action::Emulate(
            "an SQS source: polls the queue with the template's batch size, window and maximum concurrency, deleting only the records not in batchItemFailures; a DynamoDB stream: reads it in order with the batch size, retrying from a reported failure and sending a record that keeps failing to the on-failure queue".into(),
        )),
        "AWS::ApiGatewayV2::Api" => Some(Action::Emulate(
            "served on a loopback port by the runner (the ApiUrl output locally)".into(),
        )),
        "AWS::ApiGatewayV2::Route" | "AWS::ApiGatewayV2::Integration" => Some(Action::Emulate(
            "routes requests by route key to the real handler of the integrated function".into(),
        )),
        "AWS::ApiGatewayV2::Stage" => {
            skip("throttling and access logs: not applied on loopback")
        }
        "AWS::ApiGatewayV2::Authorizer" => Some(Action::Emulate(
            "a JWT authorizer: the runner plays its issuer (its own key; tokens from POST /local/tokens, keys at /.well-known/jwks.json) and checks each request's token, audience, expiry and route scopes as API Gateway does (IAM routes: unsigned locally)".into(),
        )),
        "AWS::IAM::Role" | "AWS::IAM::Policy" => skip("permissions: the emulator does not enforce IAM"),
        "AWS::KMS::Key" => skip("encryption at rest: the emulator stores plaintext"),
        "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" => {
            skip("resource policies (TLS only, publishers named): the emulator does not enforce them")
        }
        "AWS::Logs::LogGroup" => skip("the functions' log lines go to target/order-local/functions.log"),
        "AWS::Lambda::Permission" => skip("the runner invokes the functions itself"),
        "AWS::Events::Rule" => Some(Action::Emulate(
            "a schedule: the runner invokes its target function with the rule's constant input, every few seconds instead of its rate (local time passes faster)".into(),
        )),
        "AWS::CloudWatch::Dashboard" => skip("graphs of CloudWatch metrics, which are not collected locally"),
        "AWS::CDK::Metadata" => skip("CDK's version reporting"),
        _ => None,
    }
}

/// The runner's plan for every resource of the template, or an error naming an unknown type.
pub fn plan(template: &Template) -> Result<Vec<PlannedResource>, LocalError> {
    template
        .resources
        .iter()
        .map(|(id, r)| {
            let action = action_for(&r.kind).ok_or_else(|| {
                LocalError::Input(format!(
                    "resource {id} is a {}, which the local runner does not know: teach local/src/resources/ to create, emulate or skip it",
                    r.kind
                ))
            })?;
            Ok(PlannedResource {
                id: id.clone(),
                kind: r.kind.clone(),
                action,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protects: every resource of the project's stack is created, emulated or skipped for a
    /// stated reason; a resource type the runner does not know fails the plan, naming it.
    #[test]
    fn every_resource_of_the_stack_has_a_plan_and_an_unknown_type_is_an_error() {
        let template = Template::current().expect("the stack synthesizes");
        let planned = plan(&template).expect("every type is known");
        assert_eq!(planned.len(), template.resources.len());
        for kind in [
            "AWS::SQS::Queue",
            "AWS::SNS::Subscription",
            "AWS::Lambda::EventSourceMapping",
            "AWS::CloudWatch::Alarm",
        ] {
            assert!(planned.iter().any(|p| p.kind == kind), "{kind} planned");
        }
        let mut unknown = template.clone();
        unknown.resources.insert(
            "Api".into(),
            serde_json::from_value(serde_json::json!({"Type": "AWS::StepFunctions::StateMachine"}))
                .unwrap(),
        );
        let err = plan(&unknown).unwrap_err().to_string();
        assert!(
            err.contains("Api") && err.contains("AWS::StepFunctions::StateMachine"),
            "{err}"
        );
    }
}

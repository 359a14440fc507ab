//! The stack's synthesized CloudFormation template: the one description of the stack that both
//! `cdk deploy` and the local runner use.
//!
//! [`Template::current`] synthesizes it with bundling skipped (`infra/synth-template.ts`, a few
//! seconds, no Rust build) when it is missing or older than `cdk.json` or anything in `infra/`,
//! and reads it. [`Resolver`] evaluates the intrinsic functions CDK writes (`Ref`,
//! `Fn::GetAtt`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::Sub`) against the resources created
//! in the emulator.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value;

use crate::LocalError;

#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Properties", default)]
    pub properties: Value,
    #[serde(rename = "Metadata", default)]
    pub metadata: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Output {
    #[serde(rename = "Value")]
    pub value: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    #[serde(rename = "Resources")]
    pub resources: BTreeMap<String, Resource>,
    #[serde(rename = "Outputs", default)]
    pub outputs: BTreeMap<String, Output>,
}

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// Where the synthesized template is kept.
pub fn default_path() -> PathBuf {
    crate::work_dir().join("template.json")
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of cdk.json and the CDK app's sources.
fn sources_changed_at(root: &Path) -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if path.extension().is_some_and(|e| e == "ts") {
                *newest = (*newest).max(modified(&path));
            }
        }
    }
    let mut newest = modified(&root.join("cdk.json"));
    walk(&root.join("infra"), &mut newest);
    newest
}

/// One synthesis at a time in this process (tests boot pipelines in parallel).
static SYNTH: Mutex<()> = Mutex::new(());

impl Template {
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LocalError::Input(format!("read {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            LocalError::Input(format!(
                "{} is not a CloudFormation template: {e}",
                path.display()
            ))
        })
    }

    /// The template of the stack as the project's sources and cdk.json describe it now,
    /// synthesized first when the kept copy is missing or stale.
    pub fn current() -> Result<Self, LocalError> {
        Self::current_with(&[])
    }

    /// The stack's template with context `overrides` (`key=value`, as `cdk synth -c`) over
    /// cdk.json's, kept apart from the plain one and synthesized again the same way.
    pub fn current_with(overrides: &[&str]) -> Result<Self, LocalError> {
        let path = if overrides.is_empty() {
            default_path()
        } else {
            let digest: u64 = overrides.iter().fold(0xcbf2_9ce4_8422_2325, |h, o| {
                o.bytes()
                    .chain([0])
                    .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
            });
            crate::work_dir().join(format!("template-{digest:016x}.json"))
        };
        let _one_at_a_time = SYNTH.lock().unwrap_or_else(|e| e.into_inner());
        let root = workspace_root();
        let fresh = match (modified(&path), sources_changed_at(&root)) {
            (Some(template), Some(sources)) => template >= sources,
            _ => false,
        };
        if !fresh {
            synthesize(&root, &path, overrides)?;
        }
        Self::load(&path)
    }

    /// The stack's template with a JWT authorizer of the runner's local issuer
    /// ([`crate::issuer::LOCAL_ISSUER`]), for running the API as a customer would call it.
    pub fn current_with_jwt() -> Result<Self, LocalError> {
        Self::current_with(&[
            &format!("apiJwtIssuer={}", crate::issuer::LOCAL_ISSUER),
            &format!("apiJwtAudience={}", crate::issuer::LOCAL_AUDIENCE),
        ])
    }

    /// The resources of one type, by logical id.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Resource)> {
        self.resources
            .iter()
            .filter(move |(_, r)| r.kind == kind)
            .map(|(id, r)| (id.as_str(), r))
    }
}

/// Runs infra/synth-template.ts (the CDK app with bundling skipped) into `path`, with context
/// `overrides`.
fn synthesize(root: &Path, path: &Path, overrides: &[&str]) -> Result<(), LocalError> {
    eprintln!("synthesizing the stack's template (CDK app, bundling skipped)...");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| LocalError::Input(format!("create {}: {e}", dir.display())))?;
    }
    // One partial file per process: two processes synthesizing at once (a test binary and a
    // runner, or two runs) each move their own whole template into place.
    let partial = path.with_extension(format!("json.{}.partial", std::process::id()));
    let run = Command::new("npx")
        .args(["ts-node", "--prefer-ts-exts", "infra/synth-template.ts"])
        .arg(&partial)
        .args(overrides)
        .current_dir(root)
        .output()
        .map_err(|e| {
            LocalError::Input(format!(
                "could not run npx to synthesize the template ({e}); install Node.js and run `make setup`"
            ))
        })?;
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("Unknown user config"))
            .collect();
        return Err(LocalError::Input(format!(
            "synthesizing the stack's template failed (run `make setup` if node_modules is missing):\n{}",
            tail[tail.len().saturating_sub(15)..].join("\n")
        )));
    }
    std::fs::rename(&partial, path)
        .map_err(|e| LocalError::Input(format!("move {} into place: {e}", partial.display())))
}

/// A resource as it exists in the emulator: what `Ref` and `Fn::GetAtt` give.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub reference: String,
    pub attributes: HashMap<String, String>,
}

/// Evaluates intrinsic functions against the resources created so far.
pub struct Resolver<'a> {
    pub physical: &'a HashMap<String, Physical>,
    pub region: &'a str,
    pub account: &'a str,
    pub stack_name: &'a str,
}

impl Resolver<'_> {
    fn reference(&self, name: &str) -> Result<String, LocalError> {
        match name {
            "AWS::Region" => Ok(self.region.to_string()),
            "AWS::AccountId" => Ok(self.account.to_string()),
            "AWS::Partition" => Ok("aws".into()),
            "AWS::URLSuffix" => Ok("amazonaws.com".into()),
            "AWS::StackName" => Ok(self.stack_name.to_string()),
            id => self
                .physical
                .get(id)
                .map(|p| p.reference.clone())
                .ok_or_else(|| unresolved(&format!("Ref {id}"))),
        }
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<String, LocalError> {
        self.physical
            .get(id)
            .and_then(|p| p.attributes.get(attribute))
            .cloned()
            .ok_or_else(|| unresolved(&format!("Fn::GetAtt {id}.{attribute}")))
    }

    /// The value with every intrinsic function evaluated.
    pub fn resolve(&self, value: &Value) -> Result<Value, LocalError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().ok_or_else(|| unresolved("{}"))?;
                match key.as_str() {
                    "Ref" => Ok(Value::String(self.reference(as_str(arg)?)?)),
                    "Fn::GetAtt" => {
                        let parts = as_array(arg)?;
                        match parts {
                            [id, attribute] => Ok(Value::String(
                                self.attribute(as_str(id)?, as_str(attribute)?)?,
                            )),
                            _ => Err(unresolved("Fn::GetAtt with other than two parts")),
                        }
                    }
                    "Fn::Join" => match as_array(arg)? {
                        [separator, items] => {
                            let items = as_array(&self.resolve(items)?)?
                                .iter()
                                .map(|v| as_str(v).map(str::to_string))
                                .collect::<Result<Vec<_>, _>>()?;
                            Ok(Value::String(items.join(as_str(separator)?)))
                        }
                        _ => Err(unresolved("Fn::Join")),
                    },
                    "Fn::Select" => match as_array(arg)? {
                        [index, items] => {
                            let index = self
                                .resolve(index)?
                                .as_u64()
                                .or_else(|| index.as_str().and_then(|s| s.parse().ok()))
                                .ok_or_else(|| unresolved("Fn::Select index"))?;
                            as_array(&self.resolve(items)?)?
                                .get(index as usize)
                                .cloned()
                                .ok_or_else(|| unresolved("Fn::Select out of range"))
                        }
                        _ => Err(unresolved("Fn::Select")),
                    },
                    "Fn::Split" => match as_array(arg)? {
                        [separator, source] => {
                            let source = self.resolve(source)?;
                            Ok(Value::Array(
                                as_str(&source)?
                                    .split(as_str(separator)?)
                                    .map(|s| Value::String(s.to_string()))
                                    .collect(),
                            ))
                        }
                        _ => Err(unresolved("Fn::Split")),
                    },
                    "Fn::Sub" => self.sub(as_str(arg)?),
                    _ => Ok(Value::Object(
                        map.iter()
                            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                            .collect::<Result<_, LocalError>>()?,
                    )),
                }
            }
            Value::Object(map) => Ok(Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, LocalError>>()?,
            )),
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    /// `Fn::Sub` with `${Name}` and `${Name.Attribute}` (CDK writes no variable map here).
    fn sub(&self, text: &str) -> Result<Value, LocalError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| unresolved("Fn::Sub"))?;
            let name = &rest[start + 2..start + end];
            let value = match name.split_once('.') {
                Some((id, attribute)) => self.attribute(id, attribute)?,
                None => self.reference(name)?,
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }

    /// The value resolved to a string (numbers and booleans as CloudFormation writes them).
    pub fn string(&self, value: &Value) -> Result<String, LocalError> {
        match self.resolve(value)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Ok(other.to_string()),
        }
    }
}

fn unresolved(what: &str) -> LocalError {
    LocalError::Input(format!(
        "the template uses {what}, which the local runner cannot resolve: teach local/src/template.rs"
    ))
}

fn as_str(v: &Value) -> Result<&str, LocalError> {
    v.as_str()
        .ok_or_else(|| unresolved(&format!("a non-string {v}")))
}

fn as_array(v: &Value) -> Result<&[Value], LocalError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| unresolved(&format!("a non-list {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intrinsics_resolve_against_created_resources() {
        let mut physical = HashMap::new();
        physical.insert(
            "Q".to_string(),
            Physical {
                reference: "http://q".into(),
                attributes: [
                    ("Arn".to_string(), "arn:aws:sqs:r:1:q".to_string()),
                    ("QueueName".to_string(), "q".to_string()),
                ]
                .into(),
            },
        );
        let r = Resolver {
            physical: &physical,
            region: "r",
            account: "1",
            stack_name: "S",
        };
        assert_eq!(r.string(&json!({"Ref": "Q"})).unwrap(), "http://q");
        assert_eq!(
            r.string(&json!({"Fn::GetAtt": ["Q", "QueueName"]}))
                .unwrap(),
            "q"
        );
        assert_eq!(
            r.string(&json!({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":x"]]}))
                .unwrap(),
            "arn:aws:x"
        );
        assert_eq!(
            r.string(
                &json!({"Fn::Select": [5, {"Fn::Split": [":", {"Fn::GetAtt": ["Q", "Arn"]}]}]})
            )
            .unwrap(),
            "q"
        );
        assert_eq!(
            r.string(&json!({"Fn::Sub": "${Q.QueueName}-${AWS::Region}"}))
                .unwrap(),
            "q-r"
        );
        assert_eq!(
            r.resolve(
                &json!({"deadLetterTargetArn": {"Fn::GetAtt": ["Q", "Arn"]}, "maxReceiveCount": 3})
            )
            .unwrap(),
            json!({"deadLetterTargetArn": "arn:aws:sqs:r:1:q", "maxReceiveCount": 3})
        );
        let err = r.string(&json!({"Ref": "Missing"})).unwrap_err();
        assert!(err.to_string().contains("Ref Missing"), "{err}");
    }
}

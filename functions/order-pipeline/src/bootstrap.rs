//! Process start-up for the Lambda binaries: logging, configuration, SDK clients, built once
//! and reused by every warm invocation.
//!
//! Every binary's `main` is [`main`] with its function's marker from
//! [`crate::registry`]: the function is built from the process environment exactly as
//! the local runner builds it from the environment the synthesized template gives the function.

use std::sync::Arc;

use crate::registry::{Function, Invoked};
use crate::runtime::config::{ConfigError, Env};
use crate::runtime::telemetry::{init_logging, Stdout};

pub use lambda_runtime::Error;

/// A Lambda binary's whole `main`: JSON logging, the function `F` built from the process
/// environment (or its init error reported, see [`start`]), then Lambda's runtime loop on one
/// thread.
pub fn main<F: Function>() -> Result<(), lambda_runtime::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            init_logging(F::NAME, Arc::new(Stdout));
            let sdk = crate::adapters::aws::sdk_config().await;
            let env = Env::process();
            // Built once per process; leaked because it lives as long as the process does.
            let handler: &'static F::Handler = Box::leak(Box::new(
                start(async { F::build(&env, &sdk, Arc::new(Stdout)) }).await,
            ));
            handler.serve().await
        })
}

/// A Lambda binary's start-up, awaited: the function, or, when it cannot start, one JSON ERROR
/// line saying why and what to do, the error reported to the runtime API's init-error endpoint
/// (so Lambda shows it as the init error), and exit status 1, without Rust's Debug dump on
/// stderr.
pub async fn start<T>(init: impl std::future::Future<Output = Result<T, ConfigError>>) -> T {
    match init.await {
        Ok(function) => function,
        Err(e) => {
            tracing::error!(
                error = %e,
                action = "fix the function's environment (its settings in cdk.json), then deploy again",
                "configuration is invalid: the function cannot start"
            );
            if let Err(report) = report_init_error(&e.to_string()).await {
                tracing::error!(error = %report, "could not report the init error to the Lambda runtime API");
            }
            std::process::exit(1);
        }
    }
}

/// POSTs `message` to the runtime API's `/runtime/init/error` (AWS_LAMBDA_RUNTIME_API); nothing
/// outside Lambda (the variable unset).
pub async fn report_init_error(message: &str) -> Result<(), String> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return Ok(());
    }
    let client = lambda_runtime_api_client::Client::builder()
        .build()
        .map_err(|e| e.to_string())?;
    let body = serde_json::json!({
        "errorType": "Runtime.InitError",
        "errorMessage": message,
    })
    .to_string();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", "Runtime.InitError")
        .header("content-type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = client.call(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the runtime API answered {}", response.status()))
    }
}

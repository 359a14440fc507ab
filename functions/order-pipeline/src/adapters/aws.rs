//! The AWS SDK set-up shared by the functions, and the classification of SDK errors.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ports::PortError;

/// Loads the SDK configuration once per process (region, credentials and `AWS_ENDPOINT_URL`
/// from the environment). Each attempt is bounded so that a hung connection fails one record
/// within the function's timeout instead of timing out the whole batch.
pub async fn sdk_config() -> SdkConfig {
    with_function_limits(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

/// The deployed functions' timeouts and retries on `loader` (the local runner applies them too
/// when it injects faults, so faults meet the same retry policy as on AWS).
pub fn with_function_limits(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        // Standard retries with backoff absorb short throttling inside the invocation.
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
    // A transaction sent again (the SDK's retry) while its first send is still being applied.
    "TransactionInProgressException",
];

/// Sorts an SDK error into what the caller can act on: throttling, 5xx, timeouts and dropped
/// connections are retryable; the rest needs an operator.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = DisplayErrorContext(err).to_string();
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Retryable(text)
        }
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or_default();
            if RETRYABLE_CODES.contains(&code) || ctx.raw().status().is_server_error() {
                PortError::Retryable(text)
            } else {
                PortError::Fatal(text)
            }
        }
        _ => PortError::Fatal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    fn service_error(code: &str, status: u16) -> SdkError<PutItemError, HttpResponse> {
        let err = PutItemError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    /// Protects: a request that timed out, never reached the service or got an unreadable
    /// answer is retried (the record comes back), never treated as needing an operator.
    #[test]
    fn timeouts_dropped_connections_and_unreadable_answers_are_retryable() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let raw = || {
            HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(200).unwrap(),
                aws_smithy_types::body::SdkBody::empty(),
            )
        };
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let cases: Vec<(&str, SdkError<PutItemError, HttpResponse>)> = vec![
            ("timeout", SdkError::timeout_error(io())),
            (
                "dispatch failure",
                SdkError::dispatch_failure(ConnectorError::io(io().into())),
            ),
            ("unreadable answer", SdkError::response_error(io(), raw())),
        ];
        for (what, err) in cases {
            assert!(
                matches!(classify(&err), PortError::Retryable(_)),
                "{what} must be retryable"
            );
        }
    }

    /// Protects: every function's SDK calls are bounded (an attempt within 3 s, the call with
    /// its retries within 8 s, 3 attempts), so a hung connection fails one record, not the batch.
    #[tokio::test]
    async fn the_functions_sdk_calls_are_bounded_and_retried_three_times() {
        let config = with_function_limits(
            aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new("test-region"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::for_tests()),
        )
        .load()
        .await;
        let timeouts = config.timeout_config().expect("timeouts set");
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(8)));
        assert_eq!(
            config.retry_config().expect("retries set").max_attempts(),
            3
        );
    }

    /// Protects: throttling, transaction conflicts and 5xx answers are retried (SQS delivers the
    /// record again; a batch of them fails the invocation as an outage), while permissions and
    /// validation errors need an operator. Dropping a code from the list fails this test.
    #[test]
    fn throttling_conflicts_and_server_errors_are_retryable_the_rest_fatal() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "Throttling",
            "RequestLimitExceeded",
            "TransactionConflictException",
            "TransactionInProgressException",
            "InternalServerError",
            "ServiceUnavailable",
        ] {
            assert!(
                matches!(classify(&service_error(code, 400)), PortError::Retryable(_)),
                "{code}"
            );
        }
        assert!(matches!(
            classify(&service_error("SomethingNew", 503)),
            PortError::Retryable(_)
        ));
        for code in [
            "AccessDeniedException",
            "ResourceNotFoundException",
            "ValidationException",
        ] {
            assert!(
                matches!(classify(&service_error(code, 400)), PortError::Fatal(_)),
                "{code}"
            );
        }
    }
}

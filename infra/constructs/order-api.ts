import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AccessLogField, AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ApiSettings, FunctionSettings } from '../config';
import { BREACHING, functionErrorsAlarm, MINUTE, notify } from './alarms';
import { RustLambda } from './rust-lambda';

export interface OrderApiProps {
  /** The workspace's Cargo.toml. */
  readonly manifestPath: string;
  /** order-api's memory and timeout. */
  readonly settings: FunctionSettings;
  /** Authorization and stage throttling (config.ts). */
  readonly api: ApiSettings;
  /** Days the function's logs and the access logs are kept. */
  readonly logRetention: logs.RetentionDays;
  /** ORDER_TOPIC_ARN and TABLE_NAME for the function. */
  readonly environment: Record<string, string>;
  /** The API's alarms (function errors, 5xx answers) notify these. @default none */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

/**
 * The HTTP way in: an API Gateway HTTP API with `POST /orders` and `GET /orders/{orderId}` on
 * order-api (Rust). Callers are authenticated: IAM (SigV4) unless a JWT issuer and audience are
 * configured, then a JWT authorizer whose routes need the customer or the admin scope; the
 * function then acts for the token's customer only (docs/contract.md, "Who the caller is"). The `$default` stage throttles (rate and burst from
 * config) and writes JSON access logs to a log group with bounded retention. The function gets
 * no permissions here: the stack grants it exactly what it uses.
 */
export class OrderApi extends Construct {
  public readonly api: apigw.HttpApi;
  public readonly stage: apigw.HttpStage;
  public readonly lambda: RustLambda;
  public readonly accessLogs: logs.LogGroup;
  public readonly errorsAlarm: cloudwatch.Alarm;
  public readonly serverErrorsAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: OrderApiProps) {
    super(scope, id);
    this.lambda = new RustLambda(this, 'Function', {
      manifestPath: props.manifestPath,
      binaryName: 'order-api',
      description: 'POST /orders -> order topic; GET /orders/{orderId} <- Orders table; POST /orders/{orderId}/cancel',
      memorySize: props.settings.memoryMb,
      timeout: Duration.seconds(props.settings.timeoutSeconds),
      logRetention: props.logRetention,
      // The function reads the caller from the authorizer's context: with a JWT authorizer the
      // caller is the customer of the token's claim (an admin-scoped token: any customer); with
      // IAM, a service acting for any customer.
      environment: {
        ...props.environment,
        ...(props.api.jwtIssuer
          ? { API_AUTH: 'jwt', API_CUSTOMER_CLAIM: props.api.jwtCustomerClaim, API_ADMIN_SCOPE: props.api.jwtAdminScope }
          : { API_AUTH: 'iam' }),
      },
    });
    const authorizer = props.api.jwtIssuer
      ? new HttpJwtAuthorizer('Jwt', props.api.jwtIssuer, { jwtAudience: props.api.jwtAudience })
      : new HttpIamAuthorizer();
    // Every route takes a token with the customer scope or the admin scope (API Gateway needs
    // one of a route's scopes); with no customer scope set, any token of the issuer.
    const authorizationScopes = props.api.jwtIssuer && props.api.jwtCustomerScope
      ? [props.api.jwtCustomerScope, props.api.jwtAdminScope]
      : undefined;
    this.api = new apigw.HttpApi(this, 'Http', {
      apiName: `${Stack.of(this).stackName}-orders`,
      description: 'Order API: POST /orders, GET /orders/{orderId}, POST /orders/{orderId}/cancel',
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
    });
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = this.api.addStage('Stage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.api.throttleRate, burstLimit: props.api.throttleBurst },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            time: AccessLogField.contextRequestTime(),
            method: AccessLogField.contextHttpMethod(),
            path: AccessLogField.contextPath(),
            status: AccessLogField.contextStatus(),
            latencyMs: AccessLogField.contextResponseLatency(),
            integrationError: AccessLogField.contextIntegrationErrorMessage(),
            sourceIp: AccessLogField.contextIdentitySourceIp(),
            caller: AccessLogField.contextIdentityCaller(),
            correlationId: '$context.requestOverride.header.x-correlation-id',
          }),
        ),
      },
    });
    const integration = new HttpLambdaIntegration('Orders', this.lambda.function);
    this.api.addRoutes({ path: '/orders', methods: [apigw.HttpMethod.POST], integration, authorizationScopes });
    this.api.addRoutes({ path: '/orders/{orderId}', methods: [apigw.HttpMethod.GET], integration, authorizationScopes });
    this.api.addRoutes({ path: '/orders/{orderId}/cancel', methods: [apigw.HttpMethod.POST], integration, authorizationScopes });

    this.errorsAlarm = functionErrorsAlarm(
      this,
      'Errors',
      this.lambda.function,
      'order-api invocations fail: callers get 5xx from API Gateway. Check the function logs.',
    );
    this.serverErrorsAlarm = this.stage
      .metricServerError({ period: MINUTE, statistic: cloudwatch.Stats.SUM })
      .createAlarm(this, 'ServerErrors', {
        alarmDescription: 'The order API answers 5xx (503: the order topic or the table failed). Check order-api logs and SNS/DynamoDB health.',
        threshold: 5,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        ...BREACHING,
      });
    notify([this.errorsAlarm, this.serverErrorsAlarm], props.alarmActions);
  }

  /** The API's base URL (the `$default` stage). */
  get url(): string {
    return this.stage.url;
  }
}

import { CfnResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import { Feature, featuresOf } from '../config';

export interface RustLambdaProps {
  /** The workspace's Cargo.toml. */
  readonly manifestPath: string;
  /** The binary crate to build (functions/<binaryName>). */
  readonly binaryName: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly environment: Record<string, string>;
  readonly description: string;
  /** Its features for the template metadata. @default the stage table's for `binaryName` */
  readonly features?: readonly Feature[];
}

/** Template metadata naming a function's binary: the local runner finds its handler by it. */
export const BINARY_METADATA = 'OrderPipeline:Binary';
/**
 * Template metadata listing what the local runner must wire for a function: its features in the
 * stage table (infra/config.ts), a JSON list of names, empty for none. "backoff": the function
 * backs off on its own queue (RETRY_BASE_SECONDS, RETRY_MAX_SECONDS, QUEUE_URL);
 * "payment-provider": it calls the payment provider (a stage with the feature, and its dead-letter
 * handler, which asks the provider before an order fails).
 */
export const FEATURES_METADATA = 'OrderPipeline:Features';

/**
 * A Rust function as this project runs them: arm64 on provided.al2023 (cargo-lambda's
 * default), explicit memory and timeout, JSON logs (Lambda passes the level to the function),
 * active X-Ray tracing, its own log group with bounded retention, and its own role that may
 * write to that log group and nothing else until the caller grants more. The template names its
 * binary and its features (the stage table's) in the function's metadata, for the local runner.
 */
export class RustLambda extends Construct {
  public readonly function: RustFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  /** The binary crate it runs. */
  public readonly binaryName: string;

  constructor(scope: Construct, id: string, props: RustLambdaProps) {
    super(scope, id);
    this.binaryName = props.binaryName;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${props.binaryName}`,
    });
    this.logGroup.grantWrite(this.role);
    this.function = new RustFunction(this, 'Function', {
      manifestPath: props.manifestPath,
      binaryName: props.binaryName,
      description: props.description,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.binaryName,
        // The binaries allocate with mimalloc; committing its arenas as they are used keeps the
        // peak memory where glibc's malloc had it (docs/benchmarks.md).
        MIMALLOC_ARENA_EAGER_COMMIT: '0',
        ...props.environment,
      },
    });
    const cfn = this.function.node.defaultChild as CfnResource;
    cfn.addMetadata(BINARY_METADATA, props.binaryName);
    cfn.addMetadata(FEATURES_METADATA, [...(props.features ?? featuresOf(props.binaryName))]);
  }
}

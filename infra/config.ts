/**
 * The pipeline's settings: one typed config read from CDK context (cdk.json's "context" block,
 * overridable with `-c key=value`). The local runner (order-local) reads the same block, so
 * the emulated pipeline and the deployed one are configured from one place.
 */
import { Node } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

export interface PipelineConfig {
  /** Deployment stage. `dev` stages allow deleting the table; any other stage protects it. */
  readonly stage: string;
  /** Receives of an order message before it moves to the DLQ. */
  readonly maxReceiveCount: number;
  /** Records per order-consumer invocation (1-10). */
  readonly batchSize: number;
  /** How long the event source mapping gathers records before invoking (0-300 s). */
  readonly batchingWindowSeconds: number;
  /** Most concurrent order-consumer invocations the mapping starts (2-1000). */
  readonly maxConcurrency: number;
  /** Records of one batch processed at once inside order-consumer (1-100). */
  readonly recordConcurrency: number;
  readonly consumerMemoryMb: number;
  readonly consumerTimeoutSeconds: number;
  readonly dlqAlarmMemoryMb: number;
  readonly dlqAlarmTimeoutSeconds: number;
  /** Most DLQ messages dlq-alarm looks at per alarm. */
  readonly dlqSnapshotMax: number;
  /** Days the functions' logs are kept; one of CloudWatch Logs' retention values. */
  readonly logRetentionDays: number;
  /** The order queue's oldest message age that raises the queue-age alarm. */
  readonly queueAgeAlarmSeconds: number;
  /** An email address subscribed to the ops topic; empty for none. */
  readonly alarmEmail?: string;
}

/** A context key that is missing or out of range fails synth with a message naming it. */
export class ConfigError extends Error {}

const RETENTION_DAYS = new Set(
  Object.values(RetentionDays).filter((v): v is number => typeof v === 'number'),
);

function wholeNumber(node: Node, key: keyof PipelineConfig, min: number, max: number): number {
  const raw = node.tryGetContext(key);
  if (raw === undefined || raw === null || raw === '') {
    throw new ConfigError(`Context key "${key}" is missing: set it in cdk.json's "context" block or pass -c ${key}=VALUE`);
  }
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `Context key "${key}" is invalid: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** The SQS limit on a queue's visibility timeout. */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * At least six times the consumer's timeout plus the batching window (AWS's guidance for SQS
 * event sources), so a message is never visible again while an invocation may still hold it.
 */
export function queueVisibilityTimeoutSeconds(config: PipelineConfig): number {
  return 6 * config.consumerTimeoutSeconds + config.batchingWindowSeconds;
}

export function loadConfig(node: Node): PipelineConfig {
  const stage = node.tryGetContext('stage');
  if (typeof stage !== 'string' || !/^[a-z][a-z0-9-]{0,19}$/.test(stage)) {
    throw new ConfigError(
      `Context key "stage" is invalid: expected lower-case letters, digits and dashes (e.g. dev, prod), got ${JSON.stringify(stage)}`,
    );
  }
  const email = node.tryGetContext('alarmEmail');
  if (email !== undefined && email !== null && email !== '' && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(String(email))) {
    throw new ConfigError(`Context key "alarmEmail" is invalid: expected an email address or "", got ${JSON.stringify(email)}`);
  }
  const config: PipelineConfig = {
    stage,
    maxReceiveCount: wholeNumber(node, 'maxReceiveCount', 1, 1000),
    batchSize: wholeNumber(node, 'batchSize', 1, 10),
    batchingWindowSeconds: wholeNumber(node, 'batchingWindowSeconds', 0, 300),
    maxConcurrency: wholeNumber(node, 'maxConcurrency', 2, 1000),
    recordConcurrency: wholeNumber(node, 'recordConcurrency', 1, 100),
    consumerMemoryMb: wholeNumber(node, 'consumerMemoryMb', 128, 10240),
    consumerTimeoutSeconds: wholeNumber(node, 'consumerTimeoutSeconds', 1, 900),
    dlqAlarmMemoryMb: wholeNumber(node, 'dlqAlarmMemoryMb', 128, 10240),
    dlqAlarmTimeoutSeconds: wholeNumber(node, 'dlqAlarmTimeoutSeconds', 1, 900),
    dlqSnapshotMax: wholeNumber(node, 'dlqSnapshotMax', 1, 10000),
    logRetentionDays: wholeNumber(node, 'logRetentionDays', 1, 3653),
    queueAgeAlarmSeconds: wholeNumber(node, 'queueAgeAlarmSeconds', 60, 1_209_600),
    alarmEmail: email ? String(email) : undefined,
  };
  if (!RETENTION_DAYS.has(config.logRetentionDays)) {
    throw new ConfigError(
      `Context key "logRetentionDays" is invalid: CloudWatch Logs keeps logs for one of ${[...RETENTION_DAYS].sort((a, b) => a - b).join(', ')} days, got ${config.logRetentionDays}`,
    );
  }
  if (queueVisibilityTimeoutSeconds(config) > MAX_VISIBILITY_SECONDS) {
    throw new ConfigError(
      `Context key "consumerTimeoutSeconds" is invalid: 6 x ${config.consumerTimeoutSeconds} s + the ${config.batchingWindowSeconds} s batching window exceeds SQS's 12-hour visibility timeout`,
    );
  }
  return config;
}

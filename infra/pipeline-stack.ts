import * as path from 'path';
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as eventbridge from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import {
  FeatureSettings,
  FUNCTIONS,
  featureSettings,
  NameOfKind,
  namesOfKind,
  OutcomeAlarm,
  PipelineConfig,
  PipelineResource,
  Uses,
  WorkQueueKind,
} from './config';
import { acknowledgeFindings } from './nag';
import { Registry } from './registry';
import { PipelineDashboard } from './constructs/dashboard';
import { OrderApi } from './constructs/order-api';
import { OrderEvents } from './constructs/order-events';
import { functionErrorsAlarm, metricCountAlarm, notify } from './constructs/alarms';
import { QueueSubscription, QueueWorker, startMarginMs } from './constructs/queue-worker';
import { RustLambda } from './constructs/rust-lambda';
import { denyPublishUnless } from './constructs/topic-policy';

export interface OrderPipelineStackProps extends StackProps {
  readonly config: PipelineConfig;
  /** The Rust functions' registry. @default functions/registry.json, which must agree with the stage table */
  readonly registry?: Registry;
}

/** A function's construct-id form of its binary name: `payment-dlq` -> `PaymentDlq`. */
export function constructId(binaryName: string): string {
  return binaryName.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
}

/** How a resource a stage `uses` (infra/config.ts) reaches its function. */
interface PipelineResourceWiring {
  /** The environment variables naming it (and what goes with it)... */
  readonly environment: Readonly<Record<string, string>>;
  /** ...and the grant of exactly `actions` on it. */
  grant(role: iam.IRole, actions: readonly string[]): void;
}

/**
 * The "payment-provider" feature: the function is told its attempts and either the provider's
 * URL, secret and timeout (and may read exactly that secret: the API key is never in the
 * environment) or the simulated provider's settings, and its description says which it calls.
 */
function paymentProvider(
  settings: FeatureSettings<'payment-provider'> | undefined,
  provider: PipelineConfig['paymentProvider'],
): { via: string; environment: Record<string, string>; grant(role: iam.IRole): void } | undefined {
  if (!settings) return undefined;
  return {
    via: provider ? 'the payment provider' : 'the SIMULATED payment provider',
    environment: {
      PAYMENT_MAX_ATTEMPTS: String(settings.maxAttempts),
      ...(provider
        ? {
            PAYMENT_PROVIDER_URL: provider.url,
            PAYMENT_SECRET_ARN: provider.secretArn,
            PAYMENT_TIMEOUT_MS: String(settings.providerTimeoutMs),
          }
        : {
            SIMULATED_DECLINE_OVER: String(settings.simulatedDeclineOver),
            SIMULATED_UNAVAILABLE_PERCENT: String(settings.simulatedUnavailablePercent),
          }),
    },
    grant: (role) => {
      // The API key, read once per cold start; never in the environment.
      if (provider) {
        role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [provider.secretArn] }));
      }
    },
  };
}

/** The workspace manifest: RustFunction builds functions/<binary> from it with cargo-lambda. */
export const CARGO_MANIFEST = path.join(__dirname, '..', 'Cargo.toml');

/**
 * The order pipeline: SNS order topic -> the intake stage (queue + DLQ -> order-consumer) ->
 * DynamoDB Orders; the intake DLQ's alarm -> dlq-alarm (Rust) + ops topic; the Orders stream ->
 * order-events -> the lifecycle-event stages, each built from its row of the stage table
 * (infra/config.ts) and its entry in the Rust registry (functions/registry.json). Built to
 * docs/contract.md, "Infrastructure defaults".
 */
export class OrderPipelineStack extends Stack {
  constructor(scope: Construct, id: string, props: OrderPipelineStackProps) {
    super(scope, id, props);
    const { config } = props;
    const registry = (props.registry ?? Registry.load()).check();
    const isDev = config.stage === 'dev';

    // Two keys: SNS's grant on the queue key is conditioned on the topic's ARN (the
    // restrictSqsDescryption flag), which would make one shared key depend on a topic it encrypts.
    const keyRemoval = isDev ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const topicKey = new kms.Key(this, 'TopicKey', {
      description: 'Encrypts the order pipeline topics',
      enableKeyRotation: true,
      removalPolicy: keyRemoval,
    });
    const queueKey = new kms.Key(this, 'QueueKey', {
      description: 'Encrypts the order pipeline queues',
      enableKeyRotation: true,
      removalPolicy: keyRemoval,
    });
    // The ops topic has a key of its own: CloudWatch may use it (for this stack's alarms only),
    // and nothing of the order data is encrypted with a key a service principal can use.
    const opsKey = new kms.Key(this, 'OpsKey', {
      description: 'Encrypts the order pipeline ops topic (alarm notifications)',
      enableKeyRotation: true,
      removalPolicy: keyRemoval,
    });
    const stack = Stack.of(this);
    const fromThisStacksAlarms = {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:${stack.stackName}-*` },
    };
    opsKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisStack',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: fromThisStacksAlarms,
      }),
    );

    const table = new dynamodb.Table(this, 'OrdersTable', {
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: !isDev,
      // Every committed change feeds order-events: the lifecycle's events come from here only.
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    const inventoryTable = new dynamodb.Table(this, 'InventoryTable', {
      partitionKey: { name: 'sku', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: !isDev,
    });

    const opsTopic = new sns.Topic(this, 'OpsTopic', { masterKey: opsKey, enforceSSL: true });
    // The topic's policy replaces SNS's default one (enforceSSL adds a TLS deny), so CloudWatch
    // must be allowed explicitly, or alarm actions are refused and alarms reach nobody.
    opsTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisStackPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [opsTopic.topicArn],
        conditions: fromThisStacksAlarms,
      }),
    );
    if (config.alarmEmail) {
      opsTopic.addSubscription(new subs.EmailSubscription(config.alarmEmail));
      Validations.of(opsTopic).acknowledge({
        id: 'Serverless::Serverless-SNSRedrivePolicy',
        reason:
          'The optional ops email subscription pages a person; a bounced email has nothing to redrive, and every alarm stays visible in CloudWatch and every dlq-alarm summary in its log group.',
      });
    }
    const notifyOps = [new actions.SnsAction(opsTopic)];

    const orderTopic = new sns.Topic(this, 'OrderTopic', {
      masterKey: topicKey,
      enforceSSL: true,
      tracingConfig: sns.TracingConfig.ACTIVE,
    });
    // Who may publish orders (the API's function and the named producer roles) is set below, with the API.

    // The roles granted Publish on customer-notifications (the stages whose table row uses it).
    const customerPublishers: iam.IRole[] = [];
    const customerNotifications = new sns.Topic(this, 'CustomerNotificationsTopic', {
      masterKey: topicKey,
      enforceSSL: true,
      tracingConfig: sns.TracingConfig.ACTIVE,
    });
    if (config.notificationEmail) {
      customerNotifications.addSubscription(new subs.EmailSubscription(config.notificationEmail));
      Validations.of(customerNotifications).acknowledge({
        id: 'Serverless::Serverless-SNSRedrivePolicy',
        reason:
          'The optional email subscription is a demo inbox; a bounced email has nothing to redrive, and each notification stays traceable in the notification log group by its dedupeId.',
      });
    }

    // What a row's `uses` names: the variable that tells the function where the resource is,
    // and the grant of exactly the row's actions.
    const pipelineResources: { readonly [R in PipelineResource]: PipelineResourceWiring } = {
      orders: { environment: { TABLE_NAME: table.tableName }, grant: (role, actions) => table.grant(role, ...actions) },
      inventory: {
        // The catalogue's prices are in an item's own currency, else in the stack's default.
        environment: { INVENTORY_TABLE_NAME: inventoryTable.tableName, DEFAULT_CURRENCY: config.defaultCurrency },
        grant: (role, actions) => inventoryTable.grant(role, ...actions),
      },
      customerNotifications: {
        environment: { NOTIFICATION_TOPIC_ARN: customerNotifications.topicArn },
        grant: (role, actions) => {
          // Exact actions on the encrypted topic (grantPublish would add kms:GenerateDataKey*, a wildcard).
          role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...actions], resources: [customerNotifications.topicArn] }));
          topicKey.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey');
          if (actions.includes('sns:Publish')) customerPublishers.push(role);
        },
      },
    };
    const common = {
      manifestPath: CARGO_MANIFEST,
      key: queueKey,
      logRetention: config.logRetentionDays,
      retainDeadLetters: !isDev,
      alarmActions: notifyOps,
    };
    /**
     * The worker of table row `name` (construct `id`), fed from `subscription`, described as
     * `<input> -> <outcome>`; with the dead-letter handler the registry gives its DLQ, its
     * features wired and its `uses` granted (the handler gets the stage's environment and access).
     */
    const worker = (name: NameOfKind<WorkQueueKind>, id: string, input: string, subscription: QueueSubscription): QueueWorker => {
      const row: { readonly outcome: string; readonly uses: Uses; readonly alarms?: readonly OutcomeAlarm[] } = FUNCTIONS[name];
      const uses = Object.entries(row.uses) as [PipelineResource, readonly string[]][];
      const backoff = featureSettings(config, name, 'backoff');
      const provider = paymentProvider(featureSettings(config, name, 'payment-provider'), config.paymentProvider);
      const watch = featureSettings(config, name, 'watch');
      const handler = namesOfKind('dead-letter-handler').find((h) => h === registry.deadLetterHandlerOf(name));
      const stage = new QueueWorker(this, id, {
        ...common,
        binaryName: name,
        description: [input, ...(provider ? [provider.via] : []), row.outcome].join(' -> '),
        settings: config.functions[name],
        environment: {
          ...Object.assign({}, ...uses.map(([resource]) => pipelineResources[resource].environment)),
          ...provider?.environment,
          ...(watch && { STUCK_AFTER_SECONDS: String(watch.stuckAfterMinutes * 60) }),
        },
        // The watch's queue holds each order's message until the order should have ended.
        deliveryDelay: watch && Duration.minutes(watch.stuckAfterMinutes),
        deadLetterAlarmDescription:
          watch &&
          `Orders are stuck: not ended ${watch.stuckAfterMinutes} minutes after they were accepted (the ${name} DLQ is the stuck-order list). List them with order-producer stuck; see docs/operations.md, Stuck orders.`,
        backoff: backoff && { baseSeconds: backoff.retryBaseSeconds, maxSeconds: backoff.retryMaxSeconds },
        subscription,
        deadLetterHandler: handler && {
          binaryName: handler,
          description: `${constructId(name)} DLQ -> ${FUNCTIONS[handler].outcome}`,
          settings: config.functions[handler],
          // It asks the stage's provider before an order fails (and gets the stage's environment).
          features: provider ? ['payment-provider'] : [],
          // The stuck-order list's handler keeps a still-stuck order's letter and looks again every
          // visibility timeout: its receives are not arrivals, and the list's depth alarm pages.
          alarmOnArrivals: !watch,
        },
      });
      for (const fn of [stage.lambda, ...(stage.deadLetterHandler ? [stage.deadLetterHandler] : [])]) {
        for (const [resource, actions] of uses) pipelineResources[resource].grant(fn.role, actions);
      }
      // The stage calls the provider, and its dead-letter handler asks it (a lookup) before an order fails.
      for (const fn of [stage.lambda, ...(stage.deadLetterHandler ? [stage.deadLetterHandler] : [])]) provider?.grant(fn.role);
      // The stage's outcomes that leave money for a person to settle page ops (the row's alarms).
      notify(
        (row.alarms ?? []).map((a) => metricCountAlarm(stage, a.id, name, a.metric, a.description)),
        notifyOps,
      );
      return stage;
    };

    const intake = worker('order-consumer', 'Intake', 'Order queue', { topic: orderTopic });
    const events = new OrderEvents(this, 'OrderEvents', {
      manifestPath: CARGO_MANIFEST,
      table,
      settings: config.functions['order-events'],
      topicKey,
      queueKey,
      logRetention: config.logRetentionDays,
      retainFailures: !isDev,
      alarmActions: notifyOps,
    });
    // The stages, one per row of kind 'stage': each subscribed to the lifecycle events it acts on (the registry's).
    const eventStages = namesOfKind('stage').map((name) => {
      const eventTypes = registry.get(name).events;
      return worker(name, constructId(name), eventTypes.join(', '), {
        topic: events.topic,
        filterPolicy: { eventType: sns.SubscriptionFilter.stringFilter({ allowlist: [...eventTypes] }) },
      });
    });
    const stages = [intake, ...eventStages];
    // Customers hear only from the pipeline: no other principal of the account may publish to them.
    denyPublishUnless(customerNotifications, 'PublishByTheNotifyingStagesOnly', {
      ArnNotEquals: { 'aws:PrincipalArn': customerPublishers.map((r) => r.roleArn) },
    });

    const dlqAlarmSettings = config.functions['dlq-alarm'];
    const dlqAlarmTimeout = Duration.seconds(dlqAlarmSettings.timeoutSeconds);
    const dlqAlarm = new RustLambda(this, 'DlqAlarm', {
      manifestPath: CARGO_MANIFEST,
      binaryName: 'dlq-alarm',
      description: 'DLQ-depth alarm -> FAILED marks on Orders and a summary to the ops topic',
      memorySize: dlqAlarmSettings.memoryMb,
      timeout: dlqAlarmTimeout,
      logRetention: config.logRetentionDays,
      environment: {
        TABLE_NAME: table.tableName,
        DLQ_URL: intake.deadLetterQueue.queueUrl,
        OPS_TOPIC_ARN: opsTopic.topicArn,
        DLQ_SNAPSHOT_MAX: String(dlqAlarmSettings.snapshotMax),
        START_MARGIN_MS: String(startMarginMs(dlqAlarmTimeout)),
      },
    });
    table.grant(dlqAlarm.role, 'dynamodb:PutItem', 'dynamodb:GetItem');
    // Looks at the DLQ without consuming it: receive, then make visible again. No delete.
    intake.deadLetterQueue.grant(dlqAlarm.role, 'sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes');
    // Publishing to the encrypted ops topic, with exact actions (grantPublish would add
    // kms:GenerateDataKey*, a wildcard).
    dlqAlarm.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [opsTopic.topicArn] }));
    // Receiving from the encrypted DLQ and publishing to the encrypted ops topic.
    queueKey.grant(dlqAlarm.role, 'kms:Decrypt');
    opsKey.grant(dlqAlarm.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    // dlq-alarm's own failures (a sweep that could not examine every dead letter fails its
    // invocation; Lambda retries it twice) page too: otherwise orders could stay unmarked unseen.
    const dlqAlarmErrors = functionErrorsAlarm(
      this,
      'DlqAlarmErrors',
      dlqAlarm.function,
      'dlq-alarm fails: some dead letters were not examined or marked FAILED. Read its log (DlqAlarmLogGroup output) for the errors; the DLQ alarm stays in ALARM meanwhile.',
    );
    notify([dlqAlarmErrors], notifyOps);
    // An alarm acts on state changes only: while it stays in ALARM, later dead letters would go
    // unmarked. A schedule sweeps the DLQ too (quiet when nothing is new).
    const sweep = new eventbridge.Rule(this, 'DlqSweep', {
      description: 'dlq-alarm sweeps the intake DLQ: dead letters that arrive while its alarm stays in ALARM are marked FAILED too',
      schedule: eventbridge.Schedule.rate(Duration.minutes(dlqAlarmSettings.sweepMinutes)),
      targets: [
        new eventTargets.LambdaFunction(dlqAlarm.function, {
          event: eventbridge.RuleTargetInput.fromObject({ sweep: 'scheduled' }),
          retryAttempts: 0,
        }),
      ],
    });
    Validations.of(sweep).acknowledge({
      id: 'Serverless::Serverless-EventBusDLQ',
      reason:
        'The scheduled sweep carries no data: a delivery that fails is replaced by the next one minutes later, and the DLQ it sweeps stays in place meanwhile (its alarm is on); a DLQ of missed ticks would hold nothing to act on.',
    });
    // Both state changes of the intake DLQ's alarm invoke dlq-alarm (marks FAILED / recovery).
    const invokeDlqAlarm = new actions.LambdaAction(dlqAlarm.function);
    intake.deadLetterAlarm.addAlarmAction(invokeDlqAlarm);
    intake.deadLetterAlarm.addOkAction(invokeDlqAlarm);

    const api = new OrderApi(this, 'OrderApi', {
      manifestPath: CARGO_MANIFEST,
      settings: config.functions['order-api'],
      api: config.api,
      logRetention: config.logRetentionDays,
      environment: { ORDER_TOPIC_ARN: orderTopic.topicArn, TABLE_NAME: table.tableName },
      alarmActions: notifyOps,
    });
    // order-api may publish to the order topic (through its key), read Orders and write a cancel's
    // conditional change (UpdateItem), nothing else.
    api.lambda.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [orderTopic.topicArn] }));
    topicKey.grant(api.lambda.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    table.grant(api.lambda.role, 'dynamodb:GetItem', 'dynamodb:UpdateItem');

    // Orders come from order-api and the producer roles cdk.json names (orderPublisherRoleArns),
    // from no other principal, of this account or any other.
    const producers = config.orderPublisherRoleArns.map((arn) => new iam.ArnPrincipal(arn));
    denyPublishUnless(orderTopic, 'PublishByTheOrderPublishersOnly', {
      ArnNotEquals: { 'aws:PrincipalArn': [api.lambda.role.roleArn, ...config.orderPublisherRoleArns] },
    });
    if (producers.length > 0) {
      // A role of another account may publish only if the topic's policy and the key's allow it
      // (its own account must allow it too); for a role of this account they are enough.
      orderTopic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'PublishByTheNamedProducerRoles',
          principals: producers,
          actions: ['sns:Publish'],
          resources: [orderTopic.topicArn],
        }),
      );
      // The topic's key, for this account's topics only (SNS's encryption context names the
      // topic; naming the order topic itself would make the key depend on the topic it encrypts).
      topicKey.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'NamedProducerRolesPublishToTopics',
          principals: producers,
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: ['*'],
          conditions: { StringLike: { 'kms:EncryptionContext:aws:sns:topicArn': `arn:${stack.partition}:sns:${stack.region}:${stack.account}:*` } },
        }),
      );
    }

    new PipelineDashboard(this, 'Dashboard', { stages });

    new CfnOutput(this, 'OrderTopicArn', { value: orderTopic.topicArn, description: 'Publish orders here' });
    new CfnOutput(this, 'ApiUrl', { value: api.url, description: 'POST /orders, GET /orders/{orderId}' });
    new CfnOutput(this, 'OrderQueueUrl', { value: intake.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: intake.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueArn', { value: intake.deadLetterQueue.queueArn, description: 'Redrive source' });
    new CfnOutput(this, 'OrdersTableName', { value: table.tableName });
    new CfnOutput(this, 'InventoryTableName', { value: inventoryTable.tableName, description: 'Load stock with order-producer inventory load' });
    new CfnOutput(this, 'OrderEventsTopicArn', { value: events.topic.topicArn, description: 'Lifecycle events (eventType attribute)' });
    new CfnOutput(this, 'EventFailuresQueueUrl', { value: events.failures.queueUrl, description: 'Stream records whose events were never published' });
    new CfnOutput(this, 'OpsTopicArn', { value: opsTopic.topicArn, description: 'Alarm notifications' });
    new CfnOutput(this, 'DlqAlarmName', { value: intake.deadLetterAlarm.alarmName });
    // Every name the runbook (docs/operations.md) tells an operator to use.
    if (intake.subscriptionDeadLetterQueue) {
      new CfnOutput(this, 'SubscriptionDeadLetterQueueUrl', {
        value: intake.subscriptionDeadLetterQueue.queueUrl,
        description: 'Orders SNS could not deliver to the intake queue',
      });
    }
    new CfnOutput(this, 'ApiAccessLogGroup', { value: api.accessLogs.logGroupName });
    // Every function's log group, named after its binary (OrderConsumerLogGroup, PaymentDlqLogGroup, ...).
    for (const fn of this.node.findAll().filter((c): c is RustLambda => c instanceof RustLambda)) {
      new CfnOutput(this, `${constructId(fn.binaryName)}LogGroup`, { value: fn.logGroup.logGroupName });
    }
    // A DLQ that a handler settles holds what it could not: read, then delete (docs/operations.md).
    for (const stage of eventStages.filter((s) => s.deadLetterHandler)) {
      new CfnOutput(this, `${constructId(stage.name)}DeadLetterQueueUrl`, {
        value: stage.deadLetterQueue.queueUrl,
        description: `${constructId(stage.name)} events the ${stage.name} stage could not process`,
      });
    }
    new CfnOutput(this, 'CustomerNotificationsTopicArn', {
      value: customerNotifications.topicArn,
      description: 'One message per terminal outcome (eventType, customerId, dedupeId attributes)',
    });

    acknowledgeFindings({ stages, alarmFunctions: [dlqAlarm], api, events });
  }
}

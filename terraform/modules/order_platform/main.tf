# The reference e-commerce order platform: tables, the sinks (sinks.tf), the three stream
# consumers (two mappings per stream at most) and their monitoring. Both environments (envs/local, envs/aws) instantiate this with only the
# provider and a few mapping settings differing.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  zip_dir   = trimsuffix(var.lambda_zip_dir, "/")

  # Lambda defaults applied to every consumer; per-function values below.
  mapping_defaults = {
    starting_position                  = var.starting_position
    batch_size                         = var.batch_size
    maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
    maximum_retry_attempts             = var.maximum_retry_attempts
    parallelization_factor             = var.parallelization_factor
    bisect_batch_on_function_error     = true
    report_batch_item_failures         = true
  }

  # Every consumer's EMF metrics go to the namespace the dashboard graphs (monitoring below).
  # Merged last, so function_environment cannot send them elsewhere.
  metrics_environment = { METRICS_NAMESPACE = var.metrics_namespace }
  # The PII fields the audit archive redacts are also never logged (streamkit's logger redacts
  # them under any field name); merged last for the same reason.
  privacy_environment = { STREAMKIT_LOG_REDACT_FIELDS = join(",", var.audit_redact_fields) }
}

# --- encryption key ----------------------------------------------------------------------------

# One customer managed key for the platform's tables, log groups, Lambda environments and the
# alarm topic. The alarm topic is why it is a CMK: CloudWatch can publish to an encrypted topic
# only if the key policy grants it, which AWS managed keys cannot.
resource "aws_kms_key" "platform" {
  description             = "${var.name_prefix}order-platform data, logs and alarms"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Key administration and use are then granted by IAM policies of this account
        # (the consumers' roles get kms:Decrypt on this key only).
        Sid       = "AccountIamPolicies"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        Sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
      },
      {
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
        Sid       = "CloudWatchLogsEncryptLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"
          }
        }
      },
    ]
  })
  tags = var.tags
}

resource "aws_kms_alias" "platform" {
  name          = "alias/${var.name_prefix}order-platform"
  target_key_id = aws_kms_key.platform.key_id
}

# --- tables ----------------------------------------------------------------------------------

module "orders" {
  source           = "../stream_table"
  name             = "${var.name_prefix}orders"
  hash_key         = "pk"
  stream_view_type = "NEW_AND_OLD_IMAGES"
  kms_key_arn      = aws_kms_key.platform.arn
  tags             = var.tags
}

module "products" {
  source           = "../stream_table"
  name             = "${var.name_prefix}products"
  hash_key         = "pk"
  stream_view_type = "NEW_AND_OLD_IMAGES"
  kms_key_arn      = aws_kms_key.platform.arn
  tags             = var.tags
}

# streamkit's idempotency record format: key `id` (S), TTL `expiration` (epoch seconds).
module "idempotency" {
  source           = "../stream_table"
  name             = "${var.name_prefix}idempotency"
  hash_key         = "id"
  ttl_attribute    = "expiration"
  stream_view_type = null
  kms_key_arn      = aws_kms_key.platform.arn
  tags             = var.tags
}

module "aggregates" {
  source           = "../stream_table"
  name             = "${var.name_prefix}aggregates"
  hash_key         = "pk"
  stream_view_type = null
  kms_key_arn      = aws_kms_key.platform.arn
  tags             = var.tags
}

# CounterAggregator's per-record markers: the idempotency format (key `id`, TTL `expiration`).
module "fences" {
  source           = "../stream_table"
  name             = "${var.name_prefix}fences"
  hash_key         = "id"
  ttl_attribute    = "expiration"
  stream_view_type = null
  kms_key_arn      = aws_kms_key.platform.arn
  tags             = var.tags
}

# --- consumers -------------------------------------------------------------------------------

# At most two readers per stream shard (DynamoDB Streams throttles beyond that:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Processing),
# so each stream has at most two mappings: orders -> workflow + order_events, products ->
# product_events. The use cases are fan-out targets inside order_events / product_events
# (Router.fan_out, per-target idempotency), not functions of their own.
locals {
  idempotency_statement = {
    sid       = "IdempotencyRecords"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [module.idempotency.arn]
  }
  # Audit objects only under the audit/ prefix; SSE-KMS with the platform key needs a data key.
  audit_statements = [
    { sid = "ArchiveChanges", actions = ["s3:PutObject"], resources = ["${aws_s3_bucket.audit.arn}/${local.audit_prefix}/*"] },
    { sid = "EncryptArchive", actions = ["kms:GenerateDataKey"], resources = [aws_kms_key.platform.arn] },
  ]
  sink_environment = {
    IDEMPOTENCY_TABLE   = module.idempotency.name
    AUDIT_BUCKET        = aws_s3_bucket.audit.bucket
    AUDIT_REDACT_FIELDS = join(",", var.audit_redact_fields)
    REDIS_URL           = var.redis_url
  }

  consumers = {
    order_events = {
      description = "Fans every order change out to audit (S3), cache (Redis), notify (SES/SNS), analytics and fulfilment (Step Functions)."
      streams     = { orders = module.orders.stream_arn }
      filters     = []
      vpc         = true
      environment = merge(local.sink_environment, {
        NOTIFICATION_SENDER = var.notification_sender
        AGGREGATES_TABLE    = module.aggregates.name
        FENCE_TABLE         = module.fences.name
        STATE_MACHINE_ARN   = aws_sfn_state_machine.fulfilment.arn
        PICKUP_WAIT_SECONDS = tostring(var.pickup_wait_seconds)
      })
      statements = concat([local.idempotency_statement], local.audit_statements, [
        # The verified sender identity only.
        { sid = "SendEmail", actions = ["ses:SendEmail"], resources = [aws_ses_email_identity.sender.arn] },
        # SMS to a phone number has no resource ARN; NotResource of every topic allows exactly
        # that and no topic publish. https://docs.aws.amazon.com/sns/latest/dg/sms_publish-to-phone.html
        { sid = "SendSms", actions = ["sns:Publish"], not_resources = ["arn:${local.partition}:sns:*:*:*"] },
        # TransactWriteItems is authorized per contained action: ADD on aggregates (Update),
        # conditional marker Put on fences; markers are read back with BatchGetItem.
        { sid = "AddToAggregates", actions = ["dynamodb:UpdateItem"], resources = [module.aggregates.arn] },
        { sid = "RecordMarkers", actions = ["dynamodb:PutItem", "dynamodb:BatchGetItem"], resources = [module.fences.arn] },
        { sid = "StartFulfilment", actions = ["states:StartExecution"], resources = [aws_sfn_state_machine.fulfilment.arn] },
      ])
    }
    product_events = {
      description = "Fans every product change out to audit (S3) and cache (Redis)."
      streams     = { products = module.products.stream_arn }
      filters     = []
      vpc         = true
      environment = local.sink_environment
      statements  = concat([local.idempotency_statement], local.audit_statements)
    }
    workflow = {
      description = "Order pipeline PLACED -> VALIDATED -> PAID -> RESERVED (fulfilment ships)."
      streams     = { orders = module.orders.stream_arn }
      filters     = [jsonencode({ eventName = ["INSERT", "MODIFY"] })]
      vpc         = false
      environment = {
        ORDERS_TABLE   = module.orders.name
        PRODUCTS_TABLE = module.products.name
      }
      statements = [
        { sid = "AdvanceOrders", actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"], resources = [module.orders.arn] },
        # Stock reservation: one TransactWriteItems of conditional decrements.
        { sid = "ReserveStock", actions = ["dynamodb:UpdateItem"], resources = [module.products.arn] },
      ]
    }
  }

  # Checked at plan time (the mappings_per_stream output's precondition, an error, not a
  # warning like a check block) and by tests/e2e: no stream over two readers.
  # Keyed by the stream's role (orders, products): known at plan time, unlike the ARNs.
  mappings_per_stream = {
    for stream in distinct(flatten([for c in local.consumers : keys(c.streams)])) :
    stream => length([for c in local.consumers : c if contains(keys(c.streams), stream)])
  }
}

module "consumer" {
  source   = "../stream_consumer"
  for_each = local.consumers

  function_name      = "${var.name_prefix}${each.key}"
  description        = each.value.description
  zip_path           = "${local.zip_dir}/${each.key}.zip"
  handler            = "app.handler"
  runtime            = "python3.12"
  timeout            = var.function_timeout
  memory_size        = var.function_memory_size
  environment        = merge(var.function_environment, each.value.environment, local.metrics_environment, local.privacy_environment)
  kms_key_arn        = aws_kms_key.platform.arn
  log_retention_days = var.log_retention_days
  tracing_mode       = var.tracing_mode
  data_statements    = each.value.statements

  vpc_subnet_ids         = each.value.vpc ? var.vpc_subnet_ids : []
  vpc_security_group_ids = each.value.vpc ? var.vpc_security_group_ids : []

  stream_arns                        = each.value.streams
  filter_patterns                    = each.value.filters
  starting_position                  = local.mapping_defaults.starting_position
  batch_size                         = local.mapping_defaults.batch_size
  maximum_batching_window_in_seconds = local.mapping_defaults.maximum_batching_window_in_seconds
  maximum_retry_attempts             = local.mapping_defaults.maximum_retry_attempts
  parallelization_factor             = local.mapping_defaults.parallelization_factor
  bisect_batch_on_function_error     = local.mapping_defaults.bisect_batch_on_function_error
  report_batch_item_failures         = local.mapping_defaults.report_batch_item_failures

  tags = var.tags
}

# --- monitoring --------------------------------------------------------------------------------

module "monitoring" {
  source = "../monitoring"

  consumers = {
    for name, consumer in module.consumer : "${var.name_prefix}${name}" => {
      function_name = consumer.function_name
      dlq_name      = consumer.dlq_name
    }
  }
  alarm_topic_name          = "${var.name_prefix}order-platform-alarms"
  kms_key_id                = aws_kms_key.platform.arn
  alarm_emails              = var.alarm_emails
  iterator_age_threshold_ms = var.iterator_age_threshold_ms
  metrics_namespace         = var.metrics_namespace
  dashboard_name            = "${var.name_prefix}order-platform"
  tags                      = var.tags
}

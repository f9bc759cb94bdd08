# One Lambda function that consumes DynamoDB streams: the function, its log group, a
# least-privilege execution role, an SQS on-failure queue, and one event source mapping per
# stream. Mapping semantics:
# https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html

locals {
  log_group_name = "/aws/lambda/${var.function_name}"
  dlq_name       = coalesce(var.dlq_name, "${var.function_name}-dlq")
  function_response_types = (
    var.report_batch_item_failures ? ["ReportBatchItemFailures"] : []
  )
}

# --- logs --------------------------------------------------------------------------------

# Created here (not by Lambda on first invoke) so that retention and encryption are managed
# and the role needs no logs:CreateLogGroup.
resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- on-failure destination -----------------------------------------------------------------

# Receives the metadata of batches whose retries are exhausted (not the records themselves:
# read them from the stream within 24 hours using the shard and sequence numbers).
# https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-dynamodb-errors
resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = var.dlq_message_retention_seconds
  # SSE-SQS unless a CMK is given (the CMK then needs kms:GenerateDataKey for the role, below).
  sqs_managed_sse_enabled           = var.dlq_kms_key_arn == null ? true : null
  kms_master_key_id                 = var.dlq_kms_key_arn
  kms_data_key_reuse_period_seconds = var.dlq_kms_key_arn == null ? null : 300
  tags                              = var.tags
}

# --- execution role ---------------------------------------------------------------------------

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = coalesce(var.role_name, "${var.function_name}-role")
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.role_permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "this" {
  # Its own log group only (the group exists; streams are created by Lambda).
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # What the event source mapping needs to read the streams, on those streams only.
  # https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#events-dynamodb-permissions
  statement {
    sid = "ReadSourceStreams"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:ListStreams",
    ]
    resources = values(var.stream_arns)
  }

  statement {
    sid       = "SendFailedBatchesToDlq"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      # Decrypt environment variables and read streams of tables encrypted with the CMK.
      sid       = "DecryptWithPlatformKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.dlq_kms_key_arn == null ? [] : [var.dlq_kms_key_arn]
    content {
      # SendMessage to a queue encrypted with a CMK needs a data key.
      sid       = "EncryptDlqMessages"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []
    content {
      # X-Ray has no resource-level permissions for these actions:
      # https://docs.aws.amazon.com/xray/latest/devguide/security_iam_service-with-iam.html
      sid       = "WriteTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  # The function's own data access, as given by the caller (validated: no wildcard actions).
  dynamic "statement" {
    for_each = var.data_statements
    content {
      sid           = statement.value.sid
      actions       = statement.value.actions
      resources     = length(statement.value.resources) > 0 ? statement.value.resources : null
      not_resources = length(statement.value.not_resources) > 0 ? statement.value.not_resources : null
    }
  }

  dynamic "statement" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      # What AWSLambdaVPCAccessExecutionRole grants: Lambda manages the function's network
      # interfaces with the execution role. EC2 supports no resource-level permissions for the
      # Describe call, and the interfaces do not exist before Lambda creates them.
      # https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions
      sid = "ManageVpcNetworkInterfaces"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# --- function ---------------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Stream-invoked; failed batches go to the event source mapping's on-failure SQS queue (a function DLQ only applies to asynchronous invokes).
  #checkov:skip=CKV_AWS_117:In a VPC when vpc_subnet_ids is given (the order platform's fan-out functions, to reach ElastiCache); functions that only talk to AWS APIs stay out of one, a VPC would add NAT/endpoints and cold-start cost without reducing exposure.
  #checkov:skip=CKV_AWS_272:Zips are built reproducibly by scripts/build_lambda.py in CI; code signing needs a Signer profile per account and is left to the deployer.
  function_name                  = var.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  filename                       = var.zip_path
  source_code_hash               = filebase64sha256(var.zip_path)
  handler                        = var.handler
  runtime                        = var.runtime
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  dynamic "vpc_config" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  tags = var.tags

  # The log group (with retention) must exist before the first invoke creates one without.
  depends_on = [aws_cloudwatch_log_group.this]
}

# --- event source mappings ------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "this" {
  for_each = var.stream_arns

  function_name    = aws_lambda_function.this.arn
  event_source_arn = each.value
  enabled          = var.enabled

  starting_position                  = var.starting_position
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  parallelization_factor             = var.parallelization_factor
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = var.bisect_batch_on_function_error
  tumbling_window_in_seconds         = var.tumbling_window_in_seconds
  function_response_types            = local.function_response_types

  dynamic "filter_criteria" {
    for_each = length(var.filter_patterns) > 0 ? [1] : []
    content {
      dynamic "filter" {
        for_each = var.filter_patterns
        content {
          pattern = filter.value
        }
      }
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq.arn
    }
  }

  # AWS checks at creation that the role can read the stream and send to the destination.
  depends_on = [aws_iam_role_policy.this]
}

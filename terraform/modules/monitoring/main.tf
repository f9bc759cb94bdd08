# Alarms per stream consumer (iterator age, errors, DLQ depth) to an encrypted SNS topic, and a
# dashboard of the pipeline, including streamkit's EMF metrics.

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.name
}

# CloudWatch alarms can only publish to an encrypted topic whose key policy lets
# cloudwatch.amazonaws.com use the key, which the AWS managed alias/aws/sns cannot grant:
# https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
resource "aws_sns_topic" "alarms" {
  name              = var.alarm_topic_name
  kms_master_key_id = var.kms_key_id
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# A stream consumer that falls behind: the age of the last record of the last batch.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each = var.consumers

  alarm_name          = "${each.key}-iterator-age"
  alarm_description   = "${each.value.function_name} is more than ${var.iterator_age_threshold_ms} ms behind its stream."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Maximum"
  period              = var.period_seconds
  evaluation_periods  = var.iterator_age_evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.iterator_age_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each = var.consumers

  alarm_name          = "${each.key}-errors"
  alarm_description   = "${each.value.function_name} returned errors (whole-batch failures are retried, then sent to its DLQ)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

# Anything in the DLQ is a batch that exhausted its retries: records to inspect and replay.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = var.consumers

  alarm_name          = "${each.key}-dlq-not-empty"
  alarm_description   = "${each.value.dlq_name} holds failed batches of ${each.value.function_name}: inspect with `streamkit dlq list`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.dlq_name }
  statistic           = "Maximum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}

locals {
  functions = [for c in values(var.consumers) : c.function_name]
  dlqs      = [for c in values(var.consumers) : c.dlq_name]

  # The dimension set streamkit's observed handlers write. A search schema matches metrics
  # with exactly its dimension names, so a bare {namespace} would find none of them. The
  # namespace is quoted: it may hold '/', '.', '-', '#', ':' or spaces.
  stream_metrics_schema = "{\"${var.metrics_namespace}\",FunctionName,Service,TableName}"
  # streamkit.observability.ChangeLatency: one series per consumer target.
  latency_schema = "{\"${var.metrics_namespace}\",Target}"

  widgets = [
    {
      type = "metric", x = 0, y = 0, width = 12, height = 6
      properties = {
        title   = "Iterator age (max, ms)"
        region  = local.region
        stat    = "Maximum"
        period  = var.period_seconds
        metrics = [for f in local.functions : ["AWS/Lambda", "IteratorAge", "FunctionName", f]]
      }
    },
    {
      type = "metric", x = 12, y = 0, width = 12, height = 6
      properties = {
        title  = "Invocations / errors / throttles (sum)"
        region = local.region
        stat   = "Sum"
        period = var.period_seconds
        metrics = flatten([
          for f in local.functions : [
            ["AWS/Lambda", "Invocations", "FunctionName", f],
            ["AWS/Lambda", "Errors", "FunctionName", f],
            ["AWS/Lambda", "Throttles", "FunctionName", f],
          ]
        ])
      }
    },
    {
      type = "metric", x = 0, y = 6, width = 12, height = 6
      properties = {
        title   = "DLQ depth (messages visible)"
        region  = local.region
        stat    = "Maximum"
        period  = var.period_seconds
        metrics = [for q in local.dlqs : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
      }
    },
    {
      # streamkit's embedded-metric-format metrics, one line per function and source table.
      type = "metric", x = 12, y = 6, width = 12, height = 6
      properties = {
        title  = "streamkit records processed / failed (sum)"
        region = local.region
        stat   = "Sum"
        period = var.period_seconds
        metrics = [
          [{ expression = "SEARCH('${local.stream_metrics_schema} MetricName=\"RecordsProcessed\"', 'Sum', ${var.period_seconds})", id = "processed", label = "RecordsProcessed" }],
          [{ expression = "SEARCH('${local.stream_metrics_schema} MetricName=\"RecordsFailed\"', 'Sum', ${var.period_seconds})", id = "failed", label = "RecordsFailed" }],
        ]
      }
    },
    {
      # Change -> handler latency per consumer target (p99 of the items' updated_at stamps).
      type = "metric", x = 0, y = 12, width = 24, height = 6
      properties = {
        title  = "Change to handler latency per target (p99, ms)"
        region = local.region
        period = var.period_seconds
        metrics = [
          [{ expression = "SEARCH('${local.latency_schema} MetricName=\"ChangeToHandlerLatency\"', 'p99', ${var.period_seconds})", id = "latency", label = "ChangeToHandlerLatency p99" }],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.dashboard_name
  dashboard_body = jsonencode({ widgets = local.widgets })
}

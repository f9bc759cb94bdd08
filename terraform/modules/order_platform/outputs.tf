output "table_names" {
  description = "Table names by role: orders, products, audit, idempotency, aggregates, fences."
  value = {
    orders      = module.orders.name
    products    = module.products.name
    audit       = module.audit.name
    idempotency = module.idempotency.name
    aggregates  = module.aggregates.name
    fences      = module.fences.name
  }
}

output "stream_arns" {
  description = "Stream ARNs of the orders and products tables."
  value = {
    orders   = module.orders.stream_arn
    products = module.products.stream_arn
  }
}

output "cache_topic_arn" {
  description = "SNS topic receiving cache invalidations."
  value       = aws_sns_topic.cache_invalidations.arn
}

output "notifications_queue_url" {
  description = "SQS queue receiving customer notifications."
  value       = aws_sqs_queue.notifications.url
}

output "functions" {
  description = "Per consumer: function name and ARN, role, DLQ URL/ARN and mapping UUIDs."
  value = {
    for name, c in module.consumer : name => {
      function_name = c.function_name
      function_arn  = c.function_arn
      role_name     = c.role_name
      dlq_url       = c.dlq_url
      dlq_arn       = c.dlq_arn
      mappings      = c.event_source_mapping_uuids
    }
  }
}

output "kms_key_arn" {
  description = "The platform's customer managed key."
  value       = aws_kms_key.platform.arn
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = module.monitoring.dashboard_name
}

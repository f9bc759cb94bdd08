output "table_names" {
  description = "Table names by role: orders, products, idempotency, aggregates, fences."
  value = {
    orders      = module.orders.name
    products    = module.products.name
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

output "audit_bucket" {
  description = "S3 bucket of the audit archive (objects under audit/table=<table>/dt=<day>/hour=<hour>/)."
  value       = aws_s3_bucket.audit.bucket
}

output "state_machine_arn" {
  description = "The fulfilment state machine."
  value       = aws_sfn_state_machine.fulfilment.arn
}

output "notification_sender" {
  description = "SES identity notifications are sent from."
  value       = aws_ses_email_identity.sender.email
}

output "mappings_per_stream" {
  description = "Event source mappings per stream ARN (at most two each)."
  value       = local.mappings_per_stream
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

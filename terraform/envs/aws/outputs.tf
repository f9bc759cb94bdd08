output "table_names" {
  description = "Table names by role."
  value       = module.platform.table_names
}

output "stream_arns" {
  description = "Stream ARNs of orders and products."
  value       = module.platform.stream_arns
}

output "audit_bucket" {
  description = "Audit archive bucket."
  value       = module.platform.audit_bucket
}

output "state_machine_arn" {
  description = "Fulfilment state machine."
  value       = module.platform.state_machine_arn
}

output "notification_sender" {
  description = "SES sender identity (confirm the verification email before the first order)."
  value       = module.platform.notification_sender
}

output "functions" {
  description = "Per consumer: function, role, DLQ and mappings."
  value       = module.platform.functions
}

output "alarm_topic_arn" {
  description = "Alarm topic."
  value       = module.platform.alarm_topic_arn
}

output "dashboard_name" {
  description = "Dashboard name."
  value       = module.platform.dashboard_name
}

output "redis_endpoint" {
  description = "ElastiCache primary endpoint (TLS, port 6379)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

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
  description = "SES sender identity."
  value       = module.platform.notification_sender
}

output "mappings_per_stream" {
  description = "Event source mappings per stream."
  value       = module.platform.mappings_per_stream
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

output "table_names" {
  description = "Table names by role."
  value       = module.platform.table_names
}

output "stream_arns" {
  description = "Stream ARNs of orders and products."
  value       = module.platform.stream_arns
}

output "cache_topic_arn" {
  description = "Cache invalidation topic."
  value       = module.platform.cache_topic_arn
}

output "notifications_queue_url" {
  description = "Notifications queue."
  value       = module.platform.notifications_queue_url
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

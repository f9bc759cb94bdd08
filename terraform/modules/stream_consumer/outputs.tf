output "function_name" {
  description = "Function name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Function ARN."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "Execution role ARN."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Execution role name."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "dlq_arn" {
  description = "On-failure queue ARN."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "On-failure queue URL."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_name" {
  description = "On-failure queue name."
  value       = aws_sqs_queue.dlq.name
}

output "event_source_mapping_uuids" {
  description = "Mapping UUIDs, keyed like stream_arns."
  value       = { for k, m in aws_lambda_event_source_mapping.this : k => m.uuid }
}

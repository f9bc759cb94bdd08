output "name" {
  description = "Table name."
  value       = aws_dynamodb_table.this.name
}

output "arn" {
  description = "Table ARN."
  value       = aws_dynamodb_table.this.arn
}

output "stream_arn" {
  description = "Latest stream ARN (null when the stream is disabled)."
  value       = var.stream_view_type == null ? null : aws_dynamodb_table.this.stream_arn
}

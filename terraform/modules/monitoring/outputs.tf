output "alarm_topic_arn" {
  description = "ARN of the SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Every alarm name, by consumer and kind."
  value = {
    for name in keys(var.consumers) : name => {
      iterator_age = aws_cloudwatch_metric_alarm.iterator_age[name].alarm_name
      errors       = aws_cloudwatch_metric_alarm.errors[name].alarm_name
      dlq_depth    = aws_cloudwatch_metric_alarm.dlq_depth[name].alarm_name
    }
  }
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

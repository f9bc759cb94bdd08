# Alarms and a dashboard for an existing consumer (function + DLQ names), notifying by email.
#   terraform init && terraform plan -var kms_key_arn=arn:aws:kms:...

provider "aws" {
  region = "us-east-1"
}

variable "kms_key_arn" {
  description = "Customer managed key whose policy lets cloudwatch.amazonaws.com use it."
  type        = string
}

module "monitoring" {
  source = "../../modules/monitoring"

  consumers = {
    audit = { function_name = "example-audit", dlq_name = "example-audit-dlq" }
  }
  alarm_topic_name          = "example-alarms"
  kms_key_id                = var.kms_key_arn
  alarm_emails              = ["oncall@example.com"]
  iterator_age_threshold_ms = 30000
  dashboard_name            = "example-streams"
}

output "alarm_topic_arn" {
  description = "The alarm topic."
  value       = module.monitoring.alarm_topic_arn
}

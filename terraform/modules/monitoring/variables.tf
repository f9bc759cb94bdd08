variable "consumers" {
  description = "Stream consumers to watch, keyed by a short name used in alarm names: {function_name, dlq_name}."
  type = map(object({
    function_name = string
    dlq_name      = string
  }))
}

variable "alarm_topic_name" {
  description = "Name of the SNS topic the alarms notify."
  type        = string
}

variable "kms_key_id" {
  description = "Customer managed KMS key (ID, ARN or alias) encrypting the alarm topic. Its policy must allow cloudwatch.amazonaws.com kms:GenerateDataKey* and kms:Decrypt, or alarms cannot publish."
  type        = string

  validation {
    condition     = !startswith(var.kms_key_id, "alias/aws/")
    error_message = "An AWS managed key (alias/aws/...) cannot grant CloudWatch access; use a customer managed key."
  }
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "iterator_age_threshold_ms" {
  description = "Alarm when a consumer's IteratorAge (maximum) exceeds this many milliseconds."
  type        = number
  default     = 60000

  validation {
    condition     = var.iterator_age_threshold_ms > 0
    error_message = "iterator_age_threshold_ms must be positive."
  }
}

variable "iterator_age_evaluation_periods" {
  description = "Consecutive periods above the threshold before the iterator-age alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.iterator_age_evaluation_periods >= 1
    error_message = "iterator_age_evaluation_periods must be at least 1."
  }
}

variable "period_seconds" {
  description = "Alarm and dashboard period in seconds (a multiple of 60)."
  type        = number
  default     = 60

  validation {
    condition     = var.period_seconds >= 60 && var.period_seconds % 60 == 0
    error_message = "period_seconds must be a multiple of 60."
  }
}

variable "dashboard_name" {
  description = "CloudWatch dashboard name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.dashboard_name))
    error_message = "A dashboard name is 1-255 letters, digits, '-' or '_'."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of streamkit's EMF metrics (RecordsProcessed, RecordsFailed): the consumers' METRICS_NAMESPACE."
  type        = string
  default     = "streamkit"

  validation {
    condition = (
      can(regex("^[0-9A-Za-z._/#: -]{1,255}$", var.metrics_namespace))
      && trimspace(var.metrics_namespace) != ""
      && !startswith(var.metrics_namespace, ":")
      && !startswith(var.metrics_namespace, "AWS/")
    )
    error_message = "metrics_namespace is 1-255 letters, digits, spaces or . - _ / # :, not all spaces, not starting with ':' or the reserved 'AWS/'."
  }
}

variable "tags" {
  description = "Tags for the topic and alarms."
  type        = map(string)
  default     = {}
}

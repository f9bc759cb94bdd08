variable "name_prefix" {
  description = "Prefix of every resource name (e.g. \"dev-\"); empty gives the contract names orders, products, ..."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[a-z0-9-]{0,20}$", var.name_prefix))
    error_message = "name_prefix is at most 20 lower-case letters, digits or '-'."
  }
}

variable "lambda_zip_dir" {
  description = "Directory holding audit.zip, cache.zip, notify.zip, analytics.zip and workflow.zip (scripts/build_lambda.py handlers/<name> -o <dir>/<name>.zip)."
  type        = string
}

variable "starting_position" {
  description = "Where new mappings start: TRIM_HORIZON or LATEST."
  type        = string
  default     = "LATEST"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.starting_position)
    error_message = "starting_position must be TRIM_HORIZON or LATEST."
  }
}

variable "batch_size" {
  description = "BatchSize of every mapping (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be from 1 to 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "MaximumBatchingWindowInSeconds of every mapping (0-300)."
  type        = number
  default     = 1

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be from 0 to 300."
  }
}

variable "maximum_retry_attempts" {
  description = "MaximumRetryAttempts of every mapping (-1 or 0-10000)."
  type        = number
  default     = 3

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts must be -1 or from 0 to 10000."
  }
}

variable "function_timeout" {
  description = "Timeout of every function, seconds."
  type        = number
  default     = 30
}

variable "function_memory_size" {
  description = "Memory of every function, MB."
  type        = number
  default     = 256
}

variable "function_environment" {
  description = "Extra environment variables for every function (e.g. POWERTOOLS_LOG_LEVEL)."
  type        = map(string)
  default     = {}
}

variable "tracing_mode" {
  description = "X-Ray tracing of every function: Active or PassThrough."
  type        = string
  default     = "Active"
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups, days."
  type        = number
  default     = 365
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the platform key is deleted (7-30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be from 7 to 30."
  }
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the consumers' streamkit EMF metrics: every function gets it as METRICS_NAMESPACE, and the dashboard graphs it (the monitoring module validates it)."
  type        = string
  default     = "streamkit"
}

variable "iterator_age_threshold_ms" {
  description = "IteratorAge alarm threshold, milliseconds."
  type        = number
  default     = 60000
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

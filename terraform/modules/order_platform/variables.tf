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
  description = "Directory holding workflow.zip, order_events.zip and product_events.zip (python scripts/build_lambda.py --all -o <dir>)."
  type        = string
}

variable "redis_url" {
  description = "Redis the cache target invalidates (redis:// or rediss:// for TLS, e.g. ElastiCache's primary endpoint)."
  type        = string
  default     = "redis://127.0.0.1:6379/0"

  validation {
    condition     = can(regex("^rediss?://", var.redis_url))
    error_message = "redis_url must be a redis:// or rediss:// URL."
  }
}

variable "vpc_subnet_ids" {
  description = "Subnets of the fan-out functions (order_events, product_events), which must reach Redis; empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups of the fan-out functions' network interfaces."
  type        = list(string)
  default     = []
}

variable "notification_sender" {
  description = "The SES email identity notifications are sent from (verified by SES on AWS before it can send)."
  type        = string
  default     = "orders@example.com"

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+$", var.notification_sender))
    error_message = "notification_sender must be an email address."
  }
}

variable "pickup_wait_seconds" {
  description = "How long the fulfilment state machine waits for pickup before marking an order SHIPPED."
  type        = number
  default     = 60

  validation {
    condition     = var.pickup_wait_seconds >= 0 && floor(var.pickup_wait_seconds) == var.pickup_wait_seconds
    error_message = "pickup_wait_seconds must be a whole number >= 0."
  }
}

variable "audit_redact_fields" {
  description = "Item attributes (at any depth) the audit archive replaces with [REDACTED] and the functions' logs with [redacted] (STREAMKIT_LOG_REDACT_FIELDS): personal data never reaches S3 or CloudWatch Logs."
  type        = list(string)
  default     = ["email", "phone", "address"]
}

variable "audit_noncurrent_version_days" {
  description = "Days a noncurrent version of an audit object is kept."
  type        = number
  default     = 365
}

variable "audit_require_tls" {
  description = "Whether the audit bucket's policy denies every request not made over TLS (keep true on AWS; false for a plain-HTTP local emulator)."
  type        = bool
  default     = true
}

variable "audit_force_destroy" {
  description = "Whether terraform destroy may delete a non-empty audit bucket (true only for throwaway environments)."
  type        = bool
  default     = false
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

variable "parallelization_factor" {
  description = "ParallelizationFactor of every mapping (1-10): batches of one shard in flight at once; each item key keeps its lane, so per-order order holds."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10 && floor(var.parallelization_factor) == var.parallelization_factor
    error_message = "parallelization_factor must be a whole number from 1 to 10."
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

# --- function ---------------------------------------------------------------------------------

variable "function_name" {
  description = "Lambda function name; also names the role, log group and DLQ unless overridden."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "A Lambda function name is 1-64 letters, digits, '-' or '_'."
  }
}

variable "description" {
  description = "Function description."
  type        = string
  default     = ""
}

variable "zip_path" {
  description = "Path of the deployment zip (built by scripts/build_lambda.py)."
  type        = string
}

variable "handler" {
  description = "Handler entry point, module.function."
  type        = string
  default     = "app.handler"
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.12"

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be python3.11, python3.12 or python3.13."
  }
}

variable "timeout" {
  description = "Function timeout in seconds (1-900)."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds from 1 to 900."
  }
}

variable "memory_size" {
  description = "Memory in MB (128-10240)."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 leaves the function unreserved (0 stops it)."
  type        = number
  default     = -1

  validation {
    condition     = var.reserved_concurrency >= -1 && floor(var.reserved_concurrency) == var.reserved_concurrency
    error_message = "reserved_concurrency must be -1 (unreserved) or a whole number >= 0."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing: Active or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the environment variables and the log group, also granted kms:Decrypt to the role (streams of tables under that key); null uses AWS managed keys."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 3653)."
  }
}

# --- permissions ------------------------------------------------------------------------------

variable "role_name" {
  description = "Execution role name; defaults to <function_name>-role."
  type        = string
  default     = null
}

variable "role_permissions_boundary" {
  description = "ARN of a permissions boundary for the execution role."
  type        = string
  default     = null
}

variable "data_statements" {
  description = "The function's data access: IAM statements {sid, actions, resources} (or not_resources, e.g. SNS SMS: any resource that is not a topic). Actions must be explicit (no '*'); resources must be ARNs (no bare '*')."
  type = list(object({
    sid           = optional(string)
    actions       = list(string)
    resources     = optional(list(string), [])
    not_resources = optional(list(string), [])
  }))
  default = []

  validation {
    condition = alltrue([
      for s in var.data_statements : length(s.actions) > 0 && alltrue([for a in s.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9]+$", a))])
    ])
    error_message = "Each data statement needs at least one action, each 'service:Action' with no wildcard."
  }

  validation {
    condition = alltrue([
      for s in var.data_statements : (length(s.resources) > 0) != (length(s.not_resources) > 0) && alltrue([for r in concat(s.resources, s.not_resources) : r != "*"])
    ])
    error_message = "Each data statement needs resources or not_resources (one of them), and '*' is not allowed."
  }
}

# --- event source mappings --------------------------------------------------------------------
# Ranges are Lambda's: https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html

variable "stream_arns" {
  description = "DynamoDB stream ARNs to consume, keyed by a stable name (e.g. the table): one mapping each."
  type        = map(string)

  validation {
    condition     = length(var.stream_arns) > 0
    error_message = "stream_arns needs at least one stream."
  }
}

variable "enabled" {
  description = "Whether the mappings poll."
  type        = bool
  default     = true
}

variable "starting_position" {
  description = "Where a new mapping starts reading: TRIM_HORIZON (oldest record) or LATEST."
  type        = string
  default     = "LATEST"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.starting_position)
    error_message = "starting_position must be TRIM_HORIZON or LATEST (AT_TIMESTAMP is not supported for DynamoDB streams)."
  }
}

variable "batch_size" {
  description = "Maximum records per invoke (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long to gather records before invoking (0-300 s)."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300 && floor(var.maximum_batching_window_in_seconds) == var.maximum_batching_window_in_seconds
    error_message = "maximum_batching_window_in_seconds must be a whole number from 0 to 300."
  }
}

variable "parallelization_factor" {
  description = "Concurrent batches per shard (1-10); records of one item key stay in order."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10 && floor(var.parallelization_factor) == var.parallelization_factor
    error_message = "parallelization_factor must be a whole number from 1 to 10."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed batch before it goes to the DLQ: -1 (until the record expires) or 0-10000."
  type        = number
  default     = 3

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be -1 or a whole number from 0 to 10000."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Discard records older than this (to the DLQ): -1 (never) or 60-604800."
  type        = number
  default     = -1

  validation {
    condition     = var.maximum_record_age_in_seconds == -1 || (var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 604800 && floor(var.maximum_record_age_in_seconds) == var.maximum_record_age_in_seconds)
    error_message = "maximum_record_age_in_seconds must be -1 or a whole number from 60 to 604800."
  }
}

variable "bisect_batch_on_function_error" {
  description = "Split a failed batch in two and retry each half."
  type        = bool
  default     = true
}

variable "tumbling_window_in_seconds" {
  description = "Tumbling window for stateful aggregation (0-900 s; 0 disables)."
  type        = number
  default     = 0

  validation {
    condition     = var.tumbling_window_in_seconds >= 0 && var.tumbling_window_in_seconds <= 900 && floor(var.tumbling_window_in_seconds) == var.tumbling_window_in_seconds
    error_message = "tumbling_window_in_seconds must be a whole number from 0 to 900."
  }
}

variable "report_batch_item_failures" {
  description = "The function returns batchItemFailures (FunctionResponseTypes = [ReportBatchItemFailures])."
  type        = bool
  default     = true
}

variable "filter_patterns" {
  description = "Event filter patterns (JSON strings, EventBridge syntax over the stream record); records matching any one are delivered. At most 5."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.filter_patterns) <= 5
    error_message = "At most 5 filter patterns per event source mapping."
  }

  validation {
    condition     = alltrue([for p in var.filter_patterns : can(jsondecode(p)) && length(p) <= 4096])
    error_message = "Each filter pattern must be valid JSON of at most 4096 characters."
  }
}

# --- on-failure queue -------------------------------------------------------------------------

variable "dlq_name" {
  description = "Name of the on-failure SQS queue; defaults to <function_name>-dlq."
  type        = string
  default     = null
}

variable "dlq_message_retention_seconds" {
  description = "How long failed-batch records stay in the DLQ (60-1209600 s)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be from 60 to 1209600."
  }
}

variable "dlq_kms_key_arn" {
  description = "Customer managed KMS key for the DLQ; null uses SQS-managed encryption (SSE-SQS)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network ----------------------------------------------------------------------------------

variable "vpc_subnet_ids" {
  description = "Subnets to run the function in (e.g. to reach ElastiCache); empty: no VPC."
  type        = list(string)
  default     = []
}

variable "vpc_security_group_ids" {
  description = "Security groups of the function's network interfaces (with vpc_subnet_ids)."
  type        = list(string)
  default     = []
}

variable "endpoint_url" {
  description = "Local AWS endpoint: the embedded emulator's URL or LocalStack's (http://localhost:4566)."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.endpoint_url))
    error_message = "endpoint_url must be an http(s) URL."
  }
}

variable "region" {
  description = "Region the emulator serves."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; empty gives the contract names."
  type        = string
  default     = ""
}

variable "lambda_zip_dir" {
  description = "Directory holding the deployment zips (python scripts/build_lambda.py --all -o build/)."
  type        = string
  default     = "../../../build"
}

variable "redis_url" {
  description = "The local redis-server the cache target invalidates (scripts/redis_server.py starts one)."
  type        = string
  default     = "redis://127.0.0.1:6379/0"
}

variable "notification_sender" {
  description = "SES identity notifications are sent from (the emulator verifies it at once)."
  type        = string
  default     = "orders@example.com"
}

variable "pickup_wait_seconds" {
  description = "Fulfilment's wait for pickup; 0 locally so orders ship at once."
  type        = number
  default     = 0
}

# 4 locally: each fan-out invoke makes its sink calls one after another, each a round trip to
# the emulator, so one batch in flight per shard leaves the emulator idle between calls (see
# BENCHMARKS.md, "The order platform under load"). Order per order and per product holds: each
# item key keeps its lane.
variable "parallelization_factor" {
  description = "ParallelizationFactor of every mapping (1-10): batches of one shard in flight at once, each order and product keeping its lane."
  type        = number
  default     = 4

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10 && floor(var.parallelization_factor) == var.parallelization_factor
    error_message = "parallelization_factor must be a whole number from 1 to 10."
  }
}

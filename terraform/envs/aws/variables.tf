variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Environment name, used in tags."
  type        = string
  default     = "prod"
}

variable "name_prefix" {
  description = "Prefix of every resource name (e.g. \"prod-\")."
  type        = string
  default     = "streamkit-"
}

variable "lambda_zip_dir" {
  description = "Directory holding the deployment zips (python scripts/build_lambda.py --all -o build/)."
  type        = string
  default     = "../../../build"
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

variable "iterator_age_threshold_ms" {
  description = "IteratorAge alarm threshold, milliseconds."
  type        = number
  default     = 60000
}

variable "vpc_id" {
  description = "VPC of ElastiCache and the fan-out functions. Its subnets need a route to the AWS APIs the functions call (NAT gateway, or VPC endpoints for DynamoDB, S3, SES, SNS, Step Functions, SQS, KMS, CloudWatch Logs)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two, in different AZs) for the ElastiCache replication group and the fan-out functions."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets (ElastiCache Multi-AZ)."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "redis_auth_token" {
  description = "AUTH token of the Redis replication group (16-128 printable characters, no @, \" or /); null: no AUTH (the security group still limits access to the functions)."
  type        = string
  default     = null
  sensitive   = true
}

variable "notification_sender" {
  description = "The SES identity customers' email comes from. SES mails it a verification link at apply; confirm it (and leave the SES sandbox) before the first order."
  type        = string
}

variable "pickup_wait_seconds" {
  description = "How long fulfilment waits for pickup before marking an order SHIPPED."
  type        = number
  default     = 60
}

variable "parallelization_factor" {
  description = "ParallelizationFactor of every mapping (1-10): raise it when a consumer's IteratorAge grows while its invokes are healthy (per-item order holds)."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10 && floor(var.parallelization_factor) == var.parallelization_factor
    error_message = "parallelization_factor must be a whole number from 1 to 10."
  }
}

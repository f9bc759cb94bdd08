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
  description = "Directory holding the five deployment zips (scripts/build_lambda.py)."
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

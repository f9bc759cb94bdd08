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
  description = "Directory holding the five deployment zips (make build-lambdas writes build/)."
  type        = string
  default     = "../../../build"
}

# A table whose stream carries both images, with a TTL attribute.
#   terraform init && terraform plan

provider "aws" {
  region = "us-east-1"
}

module "sessions" {
  source = "../../modules/stream_table"

  name             = "example-sessions"
  hash_key         = "pk"
  range_key        = "sk"
  stream_view_type = "NEW_AND_OLD_IMAGES"
  ttl_attribute    = "expiration"
}

output "stream_arn" {
  description = "The table's stream ARN."
  value       = module.sessions.stream_arn
}
